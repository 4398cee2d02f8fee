"""Typed AMI events: nothing past the adapter sees a raw AMI dict.

Only the events the service acts on get their own class; every other event arrives as
``OtherEvent`` with its name and fields, so nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .agi_result import AgiResult, parse_agi_result


def _int(v: str | None, default: int = 0) -> int:
    try:
        return int(v) if v not in (None, "") else default
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class ChannelRef:
    channel: str
    uniqueid: str
    linkedid: str
    caller_num: str
    caller_name: str

    @staticmethod
    def of(f: Mapping[str, str]) -> ChannelRef:
        return ChannelRef(
            f.get("channel", ""), f.get("uniqueid", ""), f.get("linkedid", ""),
            _clean_cid(f.get("calleridnum", "")), _clean_cid(f.get("calleridname", "")),
        )


def _clean_cid(v: str) -> str:
    return "" if v == "<unknown>" else v


@dataclass(frozen=True, slots=True)
class AmiEvent:
    name: str
    fields: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True, slots=True)
class OtherEvent(AmiEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelEvent(AmiEvent):
    ref: ChannelRef

    @property
    def uniqueid(self) -> str:
        return self.ref.uniqueid

    @property
    def channel(self) -> str:
        return self.ref.channel


@dataclass(frozen=True, slots=True)
class AsyncAgiStart(ChannelEvent):
    env: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class AsyncAgiExec(ChannelEvent):
    command_id: str
    result: AgiResult


@dataclass(frozen=True, slots=True)
class AsyncAgiEnd(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class Hangup(ChannelEvent):
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class DtmfEnd(ChannelEvent):
    digit: str


@dataclass(frozen=True, slots=True)
class QueueCallerJoin(ChannelEvent):
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueCallerLeave(ChannelEvent):
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueCallerAbandon(ChannelEvent):
    queue: str
    position: int
    original_position: int
    hold_time: int


@dataclass(frozen=True, slots=True)
class AgentEvent(ChannelEvent):
    """AgentCalled/AgentConnect/AgentComplete/AgentRingNoAnswer: ``ref`` is the caller."""
    queue: str
    member_name: str
    interface: str
    dest_channel: str
    hold_time: int
    ring_time: int
    talk_time: int
    reason: str


@dataclass(frozen=True, slots=True)
class QueueMemberEvent(AmiEvent):
    """QueueMember{Added,Removed,Status,Pause,Penalty}, and QueueMember rows of QueueStatus."""
    queue: str
    member_name: str
    interface: str
    penalty: int
    paused: bool
    paused_reason: str
    in_call: bool
    status: int
    calls_taken: int
    last_call: int


@dataclass(frozen=True, slots=True)
class QueueEntry(ChannelEvent):
    queue: str
    position: int
    wait: int
    priority: int = 0     # the caller's QUEUE_PRIO (QueueCallerJoin's Priority is the
                          # dialplan step, not this)


@dataclass(frozen=True, slots=True)
class QueueParams(AmiEvent):
    queue: str
    strategy: str
    calls: int
    holdtime: int
    talktime: int
    completed: int
    abandoned: int


@dataclass(frozen=True, slots=True)
class CoreShowChannel(ChannelEvent):
    application: str
    application_data: str
    context: str
    duration: str
    priority: int = 0
    exten: str = ""

    @property
    def parked_in_async_agi(self) -> bool:
        return self.application == "AGI" and self.application_data.startswith("agi:async")


@dataclass(frozen=True, slots=True)
class OriginateResponse(AmiEvent):
    action_id: str
    response: str
    reason: int
    channel: str
    uniqueid: str


def _env(raw: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in raw.split("\n"):
        k, sep, v = line.partition(": ")
        if sep:
            env[k] = v
        elif line.endswith(":"):
            env[line[:-1]] = ""
    return env


def _agent(name: str, f: Mapping[str, str]) -> AgentEvent:
    return AgentEvent(name, f, ChannelRef.of(f), f.get("queue", ""), f.get("membername", ""),
                      f.get("interface", ""), f.get("destchannel", ""),
                      _int(f.get("holdtime")), _int(f.get("ringtime")),
                      _int(f.get("talktime")), f.get("reason", ""))


def _member(name: str, f: Mapping[str, str]) -> QueueMemberEvent:
    return QueueMemberEvent(
        name, f, f.get("queue", ""), f.get("membername", f.get("name", "")),
        f.get("interface", f.get("location", "")), _int(f.get("penalty")),
        f.get("paused", "0") == "1", f.get("pausedreason", ""), f.get("incall", "0") == "1",
        _int(f.get("status")), _int(f.get("callstaken")), _int(f.get("lastcall")),
    )


_BUILDERS: dict[str, Callable[[str, Mapping[str, str]], AmiEvent]] = {
    "asyncagistart": lambda n, f: AsyncAgiStart(n, f, ChannelRef.of(f), _env(f.get("env", ""))),
    "asyncagiexec": lambda n, f: AsyncAgiExec(n, f, ChannelRef.of(f), f.get("commandid", ""),
                                              parse_agi_result(f.get("result", ""))),
    "asyncagiend": lambda n, f: AsyncAgiEnd(n, f, ChannelRef.of(f)),
    "hangup": lambda n, f: Hangup(n, f, ChannelRef.of(f), _int(f.get("cause")),
                                  f.get("cause-txt", "")),
    "dtmfend": lambda n, f: DtmfEnd(n, f, ChannelRef.of(f), f.get("digit", "")),
    "queuecallerjoin": lambda n, f: QueueCallerJoin(n, f, ChannelRef.of(f), f.get("queue", ""),
                                                    _int(f.get("position")), _int(f.get("count"))),
    "queuecallerleave": lambda n, f: QueueCallerLeave(n, f, ChannelRef.of(f), f.get("queue", ""),
                                                      _int(f.get("position")),
                                                      _int(f.get("count"))),
    "queuecallerabandon": lambda n, f: QueueCallerAbandon(
        n, f, ChannelRef.of(f), f.get("queue", ""), _int(f.get("position")),
        _int(f.get("originalposition")), _int(f.get("holdtime"))),
    "agentcalled": _agent,
    "agentconnect": _agent,
    "agentcomplete": _agent,
    "agentringnoanswer": _agent,
    "queuememberadded": _member,
    "queuememberremoved": _member,
    "queuememberstatus": _member,
    "queuememberpause": _member,
    "queuememberpenalty": _member,
    "queuemember": _member,
    "queueentry": lambda n, f: QueueEntry(n, f, ChannelRef.of(f), f.get("queue", ""),
                                          _int(f.get("position")), _int(f.get("wait")),
                                          _int(f.get("priority"))),
    "queueparams": lambda n, f: QueueParams(n, f, f.get("queue", ""), f.get("strategy", ""),
                                            _int(f.get("calls")), _int(f.get("holdtime")),
                                            _int(f.get("talktime")), _int(f.get("completed")),
                                            _int(f.get("abandoned"))),
    "coreshowchannel": lambda n, f: CoreShowChannel(n, f, ChannelRef.of(f),
                                                    f.get("application", ""),
                                                    f.get("applicationdata", ""),
                                                    f.get("context", ""), f.get("duration", ""),
                                                    _int(f.get("priority")),
                                                    f.get("exten", "")),
    "originateresponse": lambda n, f: OriginateResponse(n, f, f.get("actionid", ""),
                                                        f.get("response", ""),
                                                        _int(f.get("reason")),
                                                        f.get("channel", ""),
                                                        f.get("uniqueid", "")),
}


# Names (lower case) of the events that get their own class: what the service acts on.
TYPED_EVENTS = frozenset(_BUILDERS)


def to_event(fields: Mapping[str, str]) -> AmiEvent:
    """Build the typed event for a message's lower-cased fields (``event`` must be present)."""
    name = fields.get("event", "")
    frozen = MappingProxyType(dict(fields))
    builder = _BUILDERS.get(name.lower())
    if builder is None:
        return OtherEvent(name, frozen)
    return builder(name, frozen)
