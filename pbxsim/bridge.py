"""Basic two-party bridges and their Bridge* events."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .ami_codec import Fields
from .channels import Channel
from .events import channel_fields

if TYPE_CHECKING:
    from .core import PbxCore


class Bridge:
    def __init__(self, core: PbxCore) -> None:
        self._core = core
        # uuid4 from the simulator's seeded generator keeps runs reproducible
        self.uniqueid = str(uuid.UUID(int=core.rng.getrandbits(128), version=4))
        self.channels: list[Channel] = []
        self._emit("BridgeCreate")

    def _fields(self) -> Fields:
        return [("BridgeUniqueid", self.uniqueid), ("BridgeType", "basic"),
                ("BridgeTechnology", "simple_bridge"), ("BridgeCreator", "<unknown>"),
                ("BridgeName", "<unknown>"), ("BridgeNumChannels", str(len(self.channels))),
                ("BridgeVideoSourceMode", "none")]

    def _emit(self, event: str, chan: Channel | None = None) -> None:
        fields: Fields = [("Event", event), ("Privilege", "call,all"), *self._fields()]
        if chan is not None:
            fields.extend(channel_fields(chan))
        self._core.emit_fields(fields)

    def enter(self, chan: Channel) -> None:
        self.channels.append(chan)
        chan.bridge = self
        self._emit("BridgeEnter", chan)

    def leave(self, chan: Channel) -> None:
        if chan not in self.channels:
            return
        self.channels.remove(chan)
        chan.bridge = None
        self._emit("BridgeLeave", chan)

    def destroy(self) -> None:
        for chan in list(self.channels):
            self.leave(chan)
        self._emit("BridgeDestroy")
