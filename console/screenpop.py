"""Screen pops: who is calling and why, on the agent's screen before they say hello.

On ``AgentCalled`` (the agent's phone rings) and ``AgentConnect`` the pop is built from the
call session in memory and published at once, with no database round trip on the way (that
is what keeps the AMI-event-to-screen time in milliseconds). The case record and the caller's
earlier cases follow in a second message (``pop_detail``) as soon as the store answers.

The caller's number never leaves the server in clear: pops carry it masked
(``caller_for``); an operator who must call back asks for it through the audited reveal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from cases.privacy import is_withheld, mask_number
from console.auth import Role
from console.ws import Hub
from ivr.ami.events import AgentEvent, AmiEvent, QueueCallerAbandon, QueueMemberEvent

if TYPE_CHECKING:
    from cases.departments import DepartmentView
    from cases.schemas import CaseView
    from ivr.node import AsteriskNode
    from ivr.service import HotlineService

log = logging.getLogger("hotline.web.pop")

# Department kinds that usually handle a topic: a first suggestion the operator can change.
TOPIC_KINDS: dict[str, tuple[str, ...]] = {
    "water": ("water",), "energy": ("power", "gas", "heating"), "transport": ("transit",),
    "housing": ("agency",), "social_security": ("agency",), "health": ("hospital",),
}
RECENT_CASES = 20     # cases an operator may still edit after their call
# How long a pop keeps asking for its case while the store is down or still writing it.
DETAIL_RETRY_S = 600.0
# The AMI events screen pops and agent states are made of (what a node's link must parse).
POP_EVENTS = ("AgentCalled", "AgentConnect", "AgentComplete", "AgentRingNoAnswer",
              "QueueCallerAbandon", "QueueMemberAdded", "QueueMemberRemoved",
              "QueueMemberStatus", "QueueMemberPause", "QueueMemberPenalty", "QueueMember")


def agent_topic(member: str) -> str:
    return f"agent:{member}"


def caller_for(role: Role, number: str) -> str:
    """What a role sees of a caller's number: masked for the centre, nothing for departments
    (they handle the matter; contacting the caller goes through the centre). A withheld
    number (``anonymous`` …) is ``""`` too, which the page shows as withheld."""
    if role is Role.DEPARTMENT:
        return ""
    return mask_number(number)


@dataclass(slots=True)
class Pop:
    member: str
    interface: str
    uniqueid: str
    queue: str
    phase: str                       # ringing, connected, wrapup, missed
    caller_num: str = field(repr=False)
    caller_name: str
    case_number: str | None
    topic: str | None
    transcript: str
    ivr_path: list[str]
    waited_s: float | None
    route_reason: str | None
    expected_wait_s: float | None
    node: str = ""                   # the Asterisk the call is on: Uniqueids repeat across nodes
    at: float = field(default_factory=time.time)
    detail: dict[str, Any] | None = None

    def render(self, role: Role) -> dict[str, Any]:
        return {"type": "pop", "phase": self.phase, "member": self.member,
                "interface": self.interface, "uniqueid": self.uniqueid, "queue": self.queue,
                "caller": caller_for(role, self.caller_num),
                "caller_name": "" if role is Role.DEPARTMENT or is_withheld(self.caller_name)
                else self.caller_name,
                "case": self.case_number, "topic": self.topic, "transcript": self.transcript,
                "ivr_path": self.ivr_path, "waited_s": self.waited_s,
                "route_reason": self.route_reason, "expected_wait_s": self.expected_wait_s,
                "at": self.at}


class PopTracker:
    def __init__(self, service: HotlineService, hub: Hub) -> None:
        self._service = service
        self._hub = hub
        self.store_errors = 0       # reads that failed (metrics)
        self.current: dict[str, Pop] = {}                  # member -> the pop on screen
        self._recent: dict[str, deque[str]] = {}           # member -> case numbers popped
        self._tasks: set[asyncio.Task[None]] = set()
        self.pops_sent = 0
        self._departments: tuple[float, list[DepartmentView]] = (-1e9, [])
        self._ambiguous: set[str] = set()     # member names logged as on several nodes

    # ---- AMI ---------------------------------------------------------------------------
    def on_event(self, ev: AmiEvent, node: AsteriskNode | None = None) -> None:
        """An event of ``node``'s AMI link (None: the first node's)."""
        node = node or self._service.nodes[0]
        if isinstance(ev, AgentEvent):
            member = ev.member_name or ev.interface
            if not self._sole_owner(member, node):
                return
            if ev.name == "AgentCalled":
                self._ringing(member, ev, node)
            elif ev.name == "AgentConnect":
                self._phase(member, ev, node, "connected", waited=float(ev.hold_time))
            elif ev.name == "AgentComplete":
                self._phase(member, ev, node, "wrapup")
            elif ev.name == "AgentRingNoAnswer":
                self._phase(member, ev, node, "missed")
        elif isinstance(ev, QueueCallerAbandon):
            for pop in list(self.current.values()):
                if (pop.uniqueid == ev.uniqueid and pop.node == node.name
                        and pop.phase == "ringing"):
                    pop.phase = "missed"
                    self._publish(pop)
        elif isinstance(ev, QueueMemberEvent) and ev.member_name:
            self._hub.publish(agent_topic(ev.member_name), self.agent_state_json(ev.member_name))

    def nodes_of(self, member: str) -> list[AsteriskNode]:
        """The Asterisk nodes on which ``member`` is in a queue."""
        return [n for n in self._service.nodes
                if any(member in ms for ms in n.live.members.values())]

    def _sole_owner(self, member: str, node: AsteriskNode) -> bool:
        """Pops and operator screens are keyed by member name: a name that is a queue member
        on two Asterisk nodes would show one node's callers to the other's operator, so its
        calls get no pop (the operators still take them; the names must be made unique)."""
        others = [n.name for n in self.nodes_of(member) if n is not node]
        if not others:
            return True
        if member not in self._ambiguous:
            self._ambiguous.add(member)
            log.error("member %r is in queues on Asterisk nodes %s and %s: no screen pops for "
                      "it until member names are unique across nodes", member, node.name,
                      ", ".join(others))
        return False

    def _ringing(self, member: str, ev: AgentEvent, node: AsteriskNode) -> None:
        session = node.calls.sessions.get(ev.uniqueid)
        live = node.live
        entered = live.waiting.get(ev.queue, {}).get(ev.uniqueid)
        waited = max(0.0, live.clock() - entered.entered) if entered is not None else None
        if session is None:
            # A call the service did not handle (e.g. straight to a queue while it was down):
            # still pop what AMI tells.
            pop = Pop(member, ev.interface, ev.uniqueid, ev.queue, "ringing", ev.ref.caller_num,
                      ev.ref.caller_name, None, None, "", [], waited, None, None, node.name)
        else:
            s, info = session.state, session.info
            d = s.decision
            pop = Pop(member, ev.interface, ev.uniqueid, ev.queue, "ringing", info.caller_num,
                      info.caller_name, s.case_number, s.topic,
                      s.transcript or s.live_transcript, list(s.ivr_path), waited,
                      d.reason if d else None,
                      None if d is None or d.expected_wait_s in (None, float("inf"))
                      else round(d.expected_wait_s, 1), node.name)
        self.current[member] = pop
        self._publish(pop)
        self._spawn(self._fetch_detail(pop), f"pop-detail-{ev.uniqueid}")

    def _phase(self, member: str, ev: AgentEvent, node: AsteriskNode, phase: str,
               waited: float | None = None) -> None:
        pop = self.current.get(member)
        if pop is None or pop.uniqueid != ev.uniqueid or pop.node != node.name:
            if phase != "connected":
                return
            # AgentCalled was missed (a reconnect): build the pop now.
            self._ringing(member, ev, node)
            pop = self.current[member]
        pop.phase = phase
        if waited is not None:
            pop.waited_s = waited
        if phase == "connected":
            session = node.calls.sessions.get(ev.uniqueid)
            if session is not None and pop.case_number is None:
                pop.case_number = session.state.case_number
        self._publish(pop)

    def _publish(self, pop: Pop) -> None:
        if pop.case_number:
            recent = self._recent.setdefault(pop.member, deque(maxlen=RECENT_CASES))
            if pop.case_number not in recent:
                recent.append(pop.case_number)
        self.pops_sent += self._hub.publish(agent_topic(pop.member),
                                            lambda role: json.dumps(pop.render(role),
                                                                    ensure_ascii=False))

    # ---- the case and the caller's history (second message) ---------------------------
    async def _fetch_detail(self, pop: Pop) -> None:
        """Until the case is found: while the database is down (or the recorder is still
        writing the case after an outage), try again as long as the call is on the
        operator's screen, or the operator could never record what the caller said."""
        delay = 1.0
        deadline = time.monotonic() + DETAIL_RETRY_S
        while not await self._fetch_detail_once(pop):
            if self.current.get(pop.member) is not pop or time.monotonic() > deadline:
                return
            await asyncio.sleep(delay)
            delay = min(2 * delay, 15.0)

    async def _fetch_detail_once(self, pop: Pop) -> bool:
        """Fetch and publish the detail; True once it holds the case (or never will)."""
        store = self._service.store
        shown = pop.detail
        node = pop.node or self._service.nodes[0].name
        try:
            case: CaseView | None = None
            for _ in range(20):   # the case write may still be on its way (recorder)
                case = (await store.get(pop.case_number) if pop.case_number
                        else await store.get_by_call(node, pop.uniqueid))
                if case is not None or pop.phase == "missed":
                    break
                await asyncio.sleep(0.1)
            # A withheld number is everyone's "anonymous": no history of its own.
            history = (await store.history_for_number(pop.caller_num, limit=10)
                       if not is_withheld(pop.caller_num) else [])
            departments = await self.departments()
        except Exception as e:  # noqa: BLE001 - any store failure: the pop stays up
            self.store_errors += 1
            log.warning("screen pop %s: case store unavailable (%s)", pop.uniqueid, e)
            pop.detail = {"type": "pop_detail", "uniqueid": pop.uniqueid,
                          "error": "case store unavailable: the form opens when it is back"}
        else:
            if case is not None and pop.case_number is None:
                pop.case_number = case.number
            pop.detail = {
                "type": "pop_detail", "uniqueid": pop.uniqueid,
                "case": None if case is None else case_json(case),
                "history": [history_json(c, store.timezone) for c in history
                            if case is None or c.number != case.number],
                "suggested_department": suggest_department(
                    pop.topic or (case.topic if case else None),
                    [(d.code, d.name, str(d.kind)) for d in departments if d.active]),
            }
        if self.current.get(pop.member) is pop and pop.detail != shown:
            self._publish(pop)   # the case number may be known only now
            self._hub.publish(agent_topic(pop.member),
                              json.dumps(pop.detail, ensure_ascii=False, default=str))
        detail = pop.detail or {}
        return detail.get("case") is not None or (pop.phase == "missed" and "error" not in detail)

    async def departments(self) -> list[DepartmentView]:
        """Active departments, read at most once a minute (they change by seed loads)."""
        at, cached = self._departments
        if time.monotonic() - at > 60.0:
            cached = await self._service.store.departments()
            self._departments = (time.monotonic(), cached)
        return cached

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- what operator handlers ask ---------------------------------------------------
    def may_edit(self, member: str | None, case_number: str) -> bool:
        return member is not None and case_number in self._recent.get(member, ())

    def clear(self, member: str) -> None:
        self.current.pop(member, None)

    def agent_state(self, member: str) -> dict[str, Any]:
        queues = []
        for node in self._service.nodes:       # an agent is a member on their own Asterisk
            for q, ms in node.live.members.items():
                m = ms.get(member)
                if m is not None:
                    queues.append({"queue": q, "paused": m.paused, "busy": m.busy,
                                   "penalty": m.penalty, "interface": m.interface})
        return {"type": "agent", "member": member, "queues": queues,
                "paused": bool(queues) and all(q["paused"] for q in queues)}

    def agent_state_json(self, member: str) -> str:
        return json.dumps(self.agent_state(member), ensure_ascii=False)


def case_json(c: CaseView) -> dict[str, Any]:
    return {"number": c.number, "version": c.version, "status": str(c.status),
            "case_type": None if c.case_type is None else str(c.case_type),
            "topic": c.topic, "topic_confidence": c.topic_confidence,
            "urgency": str(c.urgency), "district": c.district, "description": c.description,
            "transcript": c.transcript, "department": c.department,
            "ivr_path": list(c.ivr_path), "queue": c.queue, "agent": c.agent,
            "wait_s": c.wait_s, "created_at": c.created_at.isoformat(),
            "related_to": c.related_to, "repeat_count": c.repeat_count}


def history_json(c: CaseView, tz: tzinfo) -> dict[str, Any]:
    desc = c.description or ""
    # In the centre's time, as the case numbers and the operator's day are.
    created = c.created_at.astimezone(tz).isoformat(timespec="minutes")
    return {"number": c.number, "created_at": created,
            "topic": c.topic, "status": str(c.status),
            "outcome": None if c.outcome is None else str(c.outcome),
            "department": c.department,
            "description": desc[:140] + ("…" if len(desc) > 140 else "")}


def suggest_department(topic: str | None,
                       departments: list[tuple[str, str, str]]) -> dict[str, str] | None:
    """The first active department of a kind that handles ``topic`` (code, name, kind);
    for agencies, one whose code names the topic (``330100-housing``)."""
    if not topic:
        return None
    kinds = TOPIC_KINDS.get(topic, ())
    for code, name, kind in departments:
        if kind in kinds and (kind != "agency" or topic.split("_")[0] in code):
            return {"code": code, "name": name}
    return None
