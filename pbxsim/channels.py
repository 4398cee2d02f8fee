"""Channels, their naming and their registry.

Names and Uniqueids follow real Asterisk deterministically: ``Local/s@ivr-00000000;1`` with an
8-hex-digit counter per simulator, Uniqueid ``<epoch>.<seq>`` with ``seq`` counting every channel
the simulator created, Linkedid inherited from the channel that started the call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from .clock import SimClock

if TYPE_CHECKING:
    from .agi import AgiCommand, AgiState
    from .bridge import Bridge
    from .media import AudioTap

DOWN, RING, RINGING, UP = 0, 4, 5, 6
STATE_DESC = {0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing",
              6: "Up", 7: "Busy"}


@dataclass(frozen=True)
class Notice:
    """Something a far end (a simulated citizen) may react to."""

    kind: Literal["dtmf_prompt", "audio_prompt", "audio_end", "dtmf_dropped", "queue_join",
                  "queue_leave", "connected", "unbridged"]
    queue: str = ""
    member: str = ""
    reason: str = ""
    digits: str = ""        # dtmf_dropped: the keys read and dropped


class Endpoint(Protocol):
    """A simulated device (citizen phone, agent phone) attached to one channel."""

    def notice(self, notice: Notice) -> None: ...


@dataclass(eq=False)
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    created: float
    tech: str
    context: str
    exten: str
    priority: int = 1
    state: int = DOWN
    caller_num: str | None = None
    caller_name: str | None = None
    conn_num: str | None = None
    conn_name: str | None = None
    dnid: str | None = None
    language: str = "en"
    accountcode: str = ""
    appl: str = ""
    data: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    local_peer: Channel | None = None
    bridge: Bridge | None = None
    endpoint: Endpoint | None = None
    agi: AgiState | None = None
    # res_agi's command datastore: added by the first AGI(agi:async), kept until hangup.
    agi_queue: deque[AgiCommand] | None = None
    answered_at: float | None = None
    hangupcause: int = 0
    softhangup: bool = False
    hungup: bool = False
    pbx_running: bool = False
    async_goto: tuple[str, str, int] | None = None
    absolute_timeout: asyncio.Task[None] | None = None   # TIMEOUT(absolute), when set
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    dtmf: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    taps: list[AudioTap] = field(default_factory=list)

    @property
    def should_stop(self) -> bool:
        return self.softhangup or self.async_goto is not None

    @property
    def device(self) -> str:
        """Device name as device-state events spell it (``Local/s@ivr``)."""
        if self.tech == "Local":
            return f"Local/{self.exten_at_context}"
        return self.name.rsplit("-", 1)[0]

    @property
    def exten_at_context(self) -> str:
        base = self.name.split("/", 1)[1]
        return base.rsplit("-", 1)[0]

    def drain_dtmf(self) -> str:
        """Reads and drops the DTMF waiting on the channel; returns the digits dropped."""
        dropped = ""
        while not self.dtmf.empty():
            dropped += self.dtmf.get_nowait()
        return dropped


CHANNEL_BUCKETS = 1567  # AST_NUM_CHANNEL_BUCKETS
ENDED_KEPT = 2000


def ast_str_hash(text: str) -> int:
    """Asterisk's ast_str_hash (djb2 with xor) on a signed 32-bit int."""
    h = 5381
    for byte in text.encode():
        h = ((h * 33) ^ byte) & 0xFFFFFFFF
    return abs(h - (1 << 32) if h >= 1 << 31 else h)


class ChannelRegistry:
    """Every live channel, in creation order, plus the counters names and Uniqueids use."""

    def __init__(self, clock: SimClock, *, uniqueid_epoch: int | None = None) -> None:
        self._clock = clock
        self._uniqueid_epoch = uniqueid_epoch
        self._channels: dict[str, Channel] = {}
        # Live channels per device: member status lookups must not scan every channel
        # (hundreds of members x hundreds of channels per QueueStatus under load).
        self._by_device: dict[str, dict[str, Channel]] = {}
        # Variables of recently ended channels, for tests that look after the hangup.
        self.ended_variables: dict[str, dict[str, str]] = {}
        self._seq = 0
        self._tech_counters: dict[str, int] = {}

    def next_counter(self, tech: str) -> int:
        n = self._tech_counters.get(tech, 0)
        self._tech_counters[tech] = n + 1
        return n

    def create(self, name: str, tech: str, context: str, exten: str, *, state: int,
               linkedid: str | None = None) -> Channel:
        now = self._clock.now()
        epoch = int(now) if self._uniqueid_epoch is None else self._uniqueid_epoch
        uniqueid = f"{epoch}.{self._seq}"
        self._seq += 1
        chan = Channel(name=name, uniqueid=uniqueid, linkedid=linkedid or uniqueid, created=now,
                       tech=tech, context=context, exten=exten, state=state)
        self._channels[name] = chan
        self._by_device.setdefault(chan.device, {})[name] = chan
        return chan

    def remove(self, chan: Channel) -> None:
        if self._channels.get(chan.name) is chan:
            del self._channels[chan.name]
            on_device = self._by_device.get(chan.device)
            if on_device is not None:
                on_device.pop(chan.name, None)
                if not on_device:
                    del self._by_device[chan.device]
        self.ended_variables[chan.name] = chan.variables
        while len(self.ended_variables) > ENDED_KEPT:
            del self.ended_variables[next(iter(self.ended_variables))]

    def get(self, name: str) -> Channel | None:
        chan = self._channels.get(name)
        if chan is None:
            # Asterisk's lookups by name are case-insensitive.
            low = name.lower()
            chan = next((c for n, c in self._channels.items() if n.lower() == low), None)
        return chan

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._channels.values()))

    def __len__(self) -> int:
        return len(self._channels)

    def asterisk_order(self) -> list[Channel]:
        """Channels in the order Asterisk lists them (its channel containers are hash tables)."""
        return sorted(self._channels.values(), key=lambda c: ast_str_hash(c.name) % CHANNEL_BUCKETS)

    def live_on_device(self, device: str) -> list[Channel]:
        return list(self._by_device.get(device, {}).values())


def receiver_of(chan: Channel) -> Channel | None:
    """The channel that hears what ``chan`` plays (bridge peer, else the other Local half)."""
    if chan.bridge is not None:
        for other in chan.bridge.channels:
            if other is not chan:
                return other
        return None
    return chan.local_peer
