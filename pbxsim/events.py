"""AMI events: the common channel fields in Asterisk's order, and the bus that fans them out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .ami_codec import Fields
from .channels import STATE_DESC, Channel

log = logging.getLogger("pbxsim.events")

CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    127: "Interworking, unspecified",
}


def _or_unknown(value: str | None) -> str:
    return "<unknown>" if value is None or value == "" else value


def channel_fields(chan: Channel, prefix: str = "", **overrides: str) -> Fields:
    """The snapshot block every channel event carries, optionally prefixed (Dest, LocalOne...)."""
    values = {
        "Channel": chan.name,
        "ChannelState": str(chan.state),
        "ChannelStateDesc": STATE_DESC.get(chan.state, "Unknown"),
        "CallerIDNum": _or_unknown(chan.caller_num),
        "CallerIDName": _or_unknown(chan.caller_name),
        "ConnectedLineNum": _or_unknown(chan.conn_num),
        "ConnectedLineName": _or_unknown(chan.conn_name),
        "Language": chan.language,
        "AccountCode": chan.accountcode,
        "Context": chan.context,
        "Exten": chan.exten,
        "Priority": str(chan.priority),
        "Uniqueid": chan.uniqueid,
        "Linkedid": chan.linkedid,
    }
    values.update(overrides)
    return [(prefix + k, v) for k, v in values.items()]


Sink = Callable[[Fields], None]


class EventBus:
    """Delivers every event to every subscribed AMI session, synchronously and in order."""

    def __init__(self) -> None:
        self._sinks: list[Sink] = []

    def subscribe(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def unsubscribe(self, sink: Sink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def publish(self, fields: Fields) -> None:
        for sink in list(self._sinks):
            try:
                sink(fields)
            except Exception:  # a broken client must not stop the others from getting events
                log.exception("event sink failed")


def make_event(name: str, privilege: str, chan: Channel | None = None,
               extra: Iterable[tuple[str, str]] = (), *, dest: Channel | None = None,
               dest_overrides: dict[str, str] | None = None) -> Fields:
    fields: Fields = [("Event", name), ("Privilege", f"{privilege},all")]
    if chan is not None:
        fields.extend(channel_fields(chan))
    if dest is not None:
        fields.extend(channel_fields(dest, "Dest", **(dest_overrides or {})))
    fields.extend(extra)
    return fields
