"""The admin board from Asterisk's own events (taken from the reference transcripts and
changed only where a scenario needs it): who can take a call, and how waits ended."""

from __future__ import annotations

from console.board import QueueStats, board_snapshot
from routing.live_state import LiveQueues
from tests.test_routing_live_state import ABANDON, Clock, real


def board(live: LiveQueues, stats: QueueStats) -> dict:  # type: ignore[type-arg]
    return next(g for g in board_snapshot([("water", "water")], live, stats)["groups"]
                if g["queue"] == "water")


def feed(live: LiveQueues, stats: QueueStats, *events: object) -> None:
    for ev in events:
        live.on_event(ev)  # type: ignore[arg-type]
        stats.on_event(ev)  # type: ignore[arg-type]


def test_the_board_tells_free_agents_from_offline_phones_and_wrap_up() -> None:
    clock = Clock()
    live = LiveQueues(clock, managed=frozenset({"water"}), wrapup_s=10.0)
    stats = QueueStats("Asia/Seoul", 20.0)
    feed(live, stats, real("QueueMemberAdded"),
         real("QueueMemberAdded", MemberName="agent1002", Interface="Local/1002@agents/n",
              Status="5"))
    g = board(live, stats)
    assert g["agents"] == {"available": 1, "on_call": 0, "wrap_up": 0, "paused": 0,
                           "unavailable": 1, "total": 2}
    feed(live, stats, real("AgentConnect"), real("AgentComplete"))
    g = board(live, stats)
    assert g["agents"]["wrap_up"] == 1 and g["agents"]["available"] == 0
    assert {m["name"]: m["state"] for m in g["members"]} == {
        "agent1001": "wrap_up", "agent1002": "unavailable"}


def test_a_queue_timeout_is_not_an_abandoned_call_on_the_board() -> None:
    clock = Clock()
    live = LiveQueues(clock, managed=frozenset({"water", "housing"}))
    stats = QueueStats("Asia/Seoul", 20.0)
    join = real("QueueCallerJoin", ABANDON, Queue="water")
    abandon = real("QueueCallerAbandon", ABANDON, Queue="water", HoldTime="60")
    # The service offers the default group after the timeout: not an abandoned call.
    feed(live, stats, join, abandon, real("QueueCallerJoin", ABANDON, Queue="housing"))
    g = board(live, stats)
    assert (g["abandoned"], g["timed_out"], g["abandon_rate"]) == (0, 1, 0.0)
    # Another caller hangs up while waiting: abandoned.
    hangup = real("Hangup", ABANDON, Uniqueid="caller-2")
    feed(live, stats, real("QueueCallerJoin", ABANDON, Queue="water", Uniqueid="caller-2"),
         real("QueueCallerAbandon", ABANDON, Queue="water", Uniqueid="caller-2"), hangup)
    g = board(live, stats)
    assert (g["abandoned"], g["timed_out"]) == (1, 1)
    assert stats.totals["water"].abandoned == 1
