"""Local channel pairs (``Local/exten@context-XXXXXXXX;1`` / ``;2``) as chan_local creates them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .channels import DOWN, RING, Channel
from .events import channel_fields

if TYPE_CHECKING:
    from .core import PbxCore


def parse_local(data: str) -> tuple[str, str, str]:
    """``s@ivr/n`` -> ("s", "ivr", "n"); a missing context is ``default``."""
    body, _, options = data.partition("/")
    exten, _, context = body.partition("@")
    return exten, context or "default", options


def create_pair(core: PbxCore, exten: str, context: str, *, linkedid: str | None = None
                ) -> tuple[Channel, Channel]:
    """Both halves, with their Newchannel events; ``;2`` will run ``exten@context``."""
    n = core.channels.next_counter("Local")
    base = f"Local/{exten}@{context}-{n:08x}"
    one = core.channels.create(base + ";1", "Local", context, exten, state=DOWN,
                               linkedid=linkedid)
    two = core.channels.create(base + ";2", "Local", context, exten, state=RING,
                               linkedid=one.linkedid)
    one.local_peer, two.local_peer = two, one
    core.emit("Newchannel", "call", one)
    core.emit("Newchannel", "call", two)
    core.devices.channel_changed(one.device, publish=False)
    return one, two


def emit_local_bridge(core: PbxCore, one: Channel, two: Channel) -> None:
    core.emit_fields([("Event", "LocalBridge"), ("Privilege", "call,all"),
                      *channel_fields(one, "LocalOne"), *channel_fields(two, "LocalTwo"),
                      ("Context", two.context), ("Exten", two.exten),
                      ("LocalOptimization", "No")])
