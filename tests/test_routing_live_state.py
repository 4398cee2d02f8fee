"""The live queue picture from Asterisk's own events: the messages below are taken from the
reference transcripts recorded on a real Asterisk (``tests.reference``), with only the fields
a scenario needs changed (a device state, a queue name), and fed through the service's parser.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.ami.events import AmiEvent, to_event
from routing.live_state import LiveQueues
from tests.reference import load_transcript, parse_message

CALL = "call-through-ivr-and-queue.txt"
ABANDON = "errors-and-abandoned-call.txt"


def _messages(name: str) -> Iterator[list[tuple[str, str]]]:
    for b in load_transcript(name):
        if b.kind == "RECV":
            yield parse_message(b.data)


def real(event: str, transcript: str = CALL, **changes: str) -> AmiEvent:
    """The first ``event`` Asterisk sent in ``transcript``, with ``changes`` to its fields."""
    for msg in _messages(transcript):
        if dict(msg).get("Event") == event:
            fields = {k.lower(): v for k, v in msg}
            fields.update({k.lower(): v for k, v in changes.items()})
            return to_event(fields)
    raise AssertionError(f"no {event} in {transcript}")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def live_of(clock: Clock, **kw: object) -> LiveQueues:
    return LiveQueues(clock, managed=frozenset({"water", "housing"}), **kw)  # type: ignore[arg-type]


def water_members(live: LiveQueues) -> dict[str, bool]:
    """Member -> busy, as the router sees them in water (absent: not a candidate at all)."""
    view = live.snapshot().queues.get("water")
    return {} if view is None else {m.agent: m.busy for m in view.members}


def test_an_unregistered_phone_is_not_a_free_agent(clock: Clock) -> None:
    live = live_of(clock)
    live.on_event(real("QueueMemberAdded"))
    assert water_members(live) == {"agent1001": False}
    # The phone unregisters: app_queue's is_member_available never rings INVALID (4) or
    # UNAVAILABLE (5); nor may the router count on it.
    for state in ("5", "4"):
        live.on_event(real("QueueMemberAdded", Event="QueueMemberStatus", Status=state))
        assert water_members(live) == {}
        assert live.members["water"]["agent1001"].state(clock()) == "unavailable"
    live.on_event(real("QueueMemberAdded", Event="QueueMemberStatus", Status="1"))
    assert water_members(live) == {"agent1001": False}


def test_queues_the_service_does_not_route_to_are_not_followed(clock: Clock) -> None:
    live = live_of(clock)
    live.on_event(real("QueueMemberAdded", Queue="sales"))
    live.on_event(real("QueueCallerJoin", Queue="sales"))
    assert "sales" not in live.members and "sales" not in live.waiting
    assert "sales" not in live.snapshot().queues


def test_an_agent_stays_unavailable_through_wrap_up(clock: Clock) -> None:
    live = live_of(clock, wrapup_s=10.0)
    live.on_event(real("QueueMemberAdded"))
    live.on_event(real("AgentConnect"))
    assert water_members(live) == {"agent1001": True}
    clock.t += 60
    live.on_event(real("AgentComplete"))
    # Asterisk rings nobody for wrapuptime after a call (queues.conf wrapuptime).
    assert water_members(live) == {"agent1001": True}
    assert live.members["water"]["agent1001"].state(clock()) == "wrap_up"
    clock.t += 9.5
    assert water_members(live) == {"agent1001": True}
    clock.t += 1.0
    assert water_members(live) == {"agent1001": False}
    # The wrap-up is part of what a call costs: the handle time learnt includes it.
    talk = float(dict(next(m for m in _messages(CALL)
                           if dict(m).get("Event") == "AgentComplete"))["TalkTime"])
    view = live.stats.view(clock())
    learnt = view.aht_s[("water", 0)]
    prior = live.stats.prior_aht_s * live.stats.prior_weight
    assert learnt == pytest.approx((talk + 10.0 + prior) / (1 + live.stats.prior_weight),
                                   rel=0.01)


def test_a_queue_timeout_is_not_counted_as_impatience(clock: Clock) -> None:
    """app_queue sends QueueCallerAbandon on a Queue() timeout too. A caller who then joins
    the default group did not abandon; one whose Hangup follows did."""
    timed_out = live_of(clock)
    abandon = real("QueueCallerAbandon", ABANDON, HoldTime="60")
    for ev in (real("QueueCallerJoin", ABANDON), abandon,
               real("QueueCallerJoin", ABANDON, Queue="housing")):
        timed_out.on_event(ev)
    assert timed_out.stats.view(clock()).theta == 0.0

    hung_up = live_of(clock)
    hangup = real("Hangup", ABANDON, Uniqueid=abandon.uniqueid)  # type: ignore[attr-defined]
    for ev in (real("QueueCallerJoin", ABANDON), abandon, hangup):
        hung_up.on_event(ev)
    assert hung_up.stats.view(clock()).theta == pytest.approx(1 / 60)


def test_a_resync_keeps_the_callers_priority(clock: Clock) -> None:
    live = live_of(clock)
    entry = real("QueueEntry", ABANDON, Queue="water", Priority="5")
    live.apply_status((entry,))
    (waiting,) = live.snapshot().queues["water"].waiting
    assert waiting.priority == 5
