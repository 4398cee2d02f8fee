"""The narrow interfaces the menu engine works against, and the values crossing them.

``CallIO`` is everything the engine does with the caller; ``MenuServices`` is what it asks
the rest of the service (the clock, the case store). The live call implements them over async
AGI (``ivr.menus.live_io``). Prompt arguments are Asterisk sound names, already resolved from
the menu's prompt names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from speech.spotting import Expect

ALL_KEYS = "0123456789*#"
HUMAN_KEY = "0"


@dataclass(frozen=True, slots=True)
class Heard:
    """One utterance, as the speech recogniser understood it."""
    text: str                       # free transcript ("" when transcription is off)
    topic: str | None
    confidence: float
    keywords: tuple[str, ...]
    digits: str = ""                # keys pressed while listening
    no_speech: bool = False
    spotted: tuple[str, ...] = ()   # the keyword spotter's words (person words too)


@dataclass(frozen=True, slots=True)
class Recording:
    """A message the caller left."""
    seconds: float
    location: str                   # a WAV on the service host, or a file on Asterisk
    transcript: str | None = None   # None: not transcribed (no speech recognition)
    topic: str | None = None
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class TransferTarget:
    """Where an emergency call is handed over: ``EXEC Dial`` or an AMI Redirect."""
    kind: Literal["dial", "redirect"]
    target: str                     # dial string, or "context,exten,priority"
    timeout_s: int = 30


@dataclass(frozen=True, slots=True)
class CaseStatusInfo:
    number: str
    status: str                     # the case store's status code ("processing", ...)
    deadline: datetime | None       # aware


class CallIO(Protocol):
    @property
    def can_listen(self) -> bool:
        """Speech recognition works for this call's language (and has not failed)."""
        ...

    async def play(self, prompts: Sequence[str], keys: str = "") -> str | None:
        """Play prompts in order; a key in ``keys`` stops them (barge-in) and is returned."""
        ...

    async def ask(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play ``prompt`` (any key stops it) and collect up to ``max_digits`` keys ('#'
        ends early); None when nothing was pressed before the timeout."""
        ...

    async def listen(self, expect: Expect) -> Heard | None:
        """One utterance, listening for what ``expect`` names; None when speech recognition
        failed (``can_listen`` is then False and the engine asks with keys)."""
        ...

    async def say_digits(self, digits: str) -> None: ...

    async def set_var(self, name: str, value: str) -> None: ...

    async def record(self, max_s: float, silence_s: float) -> Recording | None:
        """Record a message ('#' ends it); None when it could not be recorded."""
        ...

    async def transfer(self, to: TransferTarget) -> bool:
        """Hand the call over; False when that failed and the call is still ours."""
        ...

    async def hangup(self) -> None: ...


class MenuServices(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def case_status(self, number: str) -> CaseStatusInfo | None:
        """The case with this number, or None. Raises when the store cannot answer."""
        ...
