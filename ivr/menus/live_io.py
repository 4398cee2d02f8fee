"""``CallIO`` over async AGI: the menu engine driving a live Asterisk channel.

Prompts with barge-in are ``STREAM FILE`` with escape digits; a question with a timeout is
``GET DATA``; speech and messages go through AudioSocket (``ivr.speech_input``); an
emergency is handed over with ``EXEC Dial`` or an AMI ``Redirect``. Every AGI command runs
through the session's ``step``, which repeats it if the AMI link drops meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import wave
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from ivr.agi import AgiChannel
from ivr.ami.errors import AgiCommandError, AgiHangup, AmiError
from ivr.ami.link import AmiLink
from ivr.menus.io import CaseStatusInfo, Heard, Recording, TransferTarget
from ivr.menus.survey import SurveyStore
from ivr.speech_input import SpeechInput
from speech.capture import Utterance
from speech.decoder import BYTES_PER_S, SAMPLE_RATE
from speech.spotting import Expect

log = logging.getLogger("hotline.call")
# Longest a case lookup may keep a caller waiting (status read back, 过程查询).
CASE_LOOKUP_WAIT_S = 5.0

T = TypeVar("T")


class Step(Protocol):
    """Runs one AGI operation, repeating it if the AMI link drops meanwhile."""

    def __call__(self, op: Callable[[], Awaitable[T]]) -> Awaitable[T]: ...


# Where Asterisk records a message when the service cannot record it itself (no AudioSocket).
ASTERISK_MESSAGES_DIR = "/var/spool/asterisk/hotline-messages"


class AgiCallIO:
    def __init__(self, agi: AgiChannel, link: AmiLink, *, call_id: str,
                 step: Step,
                 speech: SpeechInput | None, speech_locale: str,
                 locale: Callable[[], str], messages_dir: str,
                 on_partial: Callable[[str], None] | None = None,
                 on_heard: Callable[[Utterance], None] | None = None,
                 before_handoff: Callable[[], Awaitable[None]] | None = None) -> None:
        self._agi = agi
        # Run before the call leaves the IVR for someone else (Dial, Redirect): the
        # session stops its IVR watchdog, or it would cut that conversation.
        self._before_handoff = before_handoff
        self._link = link
        self._call = call_id
        self._step = step
        self._speech = speech
        self._speech_locale = speech_locale
        self._locale = locale
        self._messages_dir = Path(messages_dir)
        self._on_partial = on_partial
        self._on_heard = on_heard
        self.speech_failed = False

    async def _run(self, op: Callable[[], Awaitable[T]]) -> T:
        return await self._step(op)

    @property
    def can_listen(self) -> bool:
        return (self._speech is not None and not self.speech_failed
                and self._locale() == self._speech_locale)

    async def play(self, prompts: Sequence[str], keys: str = "") -> str | None:
        for p in prompts:
            key = await self._run(functools.partial(self._agi.stream_file, p, keys))
            if key is not None:
                return key
        return None

    async def ask(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        return await self._run(lambda: self._agi.get_data(prompt, timeout_ms, max_digits))

    async def listen(self, expect: Expect) -> Heard | None:
        speech = self._speech
        if speech is None:
            return None
        try:
            utt = await speech.listen(self._agi, self._locale(), self._on_partial,
                                      expect=expect)
        except (AgiHangup, asyncio.CancelledError):
            raise
        except Exception as e:  # noqa: BLE001 - speech failing must not drop the call
            # Vosk or AudioSocket broke: this call goes on with keys only.
            log.warning("call %s: speech unavailable (%s: %s); keys only", self._call,
                        type(e).__name__, e)
            self.speech_failed = True
            return None
        if utt.ended_by == "hangup" and not utt.text and not utt.spotted:
            # The audio stream went away with nothing heard (no transcript, no word of the
            # spotter's): the caller hanging up, or AudioSocket giving up on a slow service
            # (the channel lives on in AGI). The next AGI command tells which; meanwhile this
            # call goes on with keys. What was heard before it went away still counts.
            log.warning("call %s: AudioSocket closed while listening; keys only",
                        self._call)
            self.speech_failed = True
            return None
        if not utt.digits and not utt.no_speech and self._on_heard is not None:
            self._on_heard(utt)
        return Heard(utt.text, utt.topic, utt.confidence, utt.keywords, utt.digits,
                     utt.no_speech, utt.spotted)

    async def say_digits(self, digits: str) -> None:
        await self._run(lambda: self._agi.say_digits(digits))

    async def set_var(self, name: str, value: str) -> None:
        await self._run(lambda: self._agi.set_variable(name, value))

    async def hangup(self) -> None:
        await self._agi.hangup()

    # ---- messages ------------------------------------------------------------------------
    async def record(self, max_s: float, silence_s: float) -> Recording | None:
        if self._speech is not None and not self.speech_failed:
            got = await self._record_here(self._speech, max_s, silence_s)
            if got is not None or not self.speech_failed:
                return got
            # AudioSocket broke before the caller could speak: Asterisk records it instead.
            log.info("call %s: recording on Asterisk instead", self._call)
        return await self._record_on_asterisk(max_s, silence_s)

    async def _record_here(self, speech: SpeechInput, max_s: float,
                           silence_s: float) -> Recording | None:
        """Over AudioSocket: the WAV lands on the service host, and is transcribed when the
        model speaks the call's language."""
        try:
            pcm = await speech.record(self._agi, max_s, silence_s)
        except (AgiHangup, asyncio.CancelledError):
            raise
        except Exception as e:  # noqa: BLE001 - a lost recording must not drop the call
            log.warning("call %s: message not recorded over AudioSocket (%s: %s)", self._call,
                        type(e).__name__, e)
            self.speech_failed = True
            return None
        if not pcm:
            return None
        path = self._messages_dir / f"{self._call}.wav"
        await asyncio.to_thread(_write_wav, path, pcm)
        seconds = round(len(pcm) / BYTES_PER_S, 1)
        if self._locale() != self._speech_locale:
            return Recording(seconds, str(path))
        try:
            t = await speech.transcribe(pcm, self._locale())
        except Exception as e:  # noqa: BLE001 - the recording is kept untranscribed
            log.warning("call %s: message recorded in %s but not transcribed (%s)",
                        self._call, path, e)
            return Recording(seconds, str(path))
        return Recording(seconds, str(path), t.text, t.topic, t.confidence)

    async def _record_on_asterisk(self, max_s: float, silence_s: float) -> Recording | None:
        """RECORD FILE: the WAV stays on the Asterisk host; no transcript."""
        path = f"{ASTERISK_MESSAGES_DIR}/{self._call}"
        try:
            r = await self._run(lambda: self._agi.record_file(
                path, "wav", "#", int(max_s * 1000), max(1, round(silence_s))))
        except AgiCommandError as e:
            log.warning("call %s: RECORD FILE failed (%s); no message", self._call, e)
            return None
        endpos = r.raw.rpartition("endpos=")[2].split()[0] if "endpos=" in r.raw else "0"
        seconds = int(endpos) / SAMPLE_RATE if endpos.isdigit() else 0.0
        return Recording(round(seconds, 1), f"asterisk:{path}.wav")

    # ---- emergencies -----------------------------------------------------------------------
    async def transfer(self, to: TransferTarget) -> bool:
        if self._before_handoff is not None:
            await self._before_handoff()
        if to.kind == "dial":
            await self._run(lambda: self._agi.exec("Dial", f"{to.target},{to.timeout_s}",
                                                   timeout=None))
            status = await self._run(lambda: self._agi.get_variable("DIALSTATUS"))
            log.info("call %s: emergency Dial %s: %s", self._call, to.target, status)
            if status != "ANSWER":
                return False
            # The other side hung up first: Dial has returned into async AGI with the caller
            # still on the line, and nothing else is coming for them.
            try:
                await self._agi.hangup()
            except AmiError as e:
                log.debug("call %s: hangup after the transfer: %s", self._call, e)
            return True
        context, exten, priority = to.target.split(",")
        try:
            res = await self._link.action("Redirect", {
                "Channel": self._agi.channel, "Context": context, "Exten": exten,
                "Priority": priority}, check=False)
        except AmiError as e:
            log.warning("call %s: emergency Redirect failed: %s", self._call, e)
            return False
        if not res.success:
            log.warning("call %s: emergency Redirect refused: %s", self._call, res.message)
        return res.success


def _write_wav(path: Path, pcm: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)


class StoreServices:
    """What the menu engine asks of the service: the clock and case statuses."""

    def __init__(self, store: SurveyStore | None, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def case_status(self, number: str) -> CaseStatusInfo | None:
        if self._store is None:
            raise RuntimeError("no case store to look the case up in")
        # The caller is listening to silence meanwhile: a store that hangs (PostgreSQL has no
        # statement timeout here) must not hold them; the menu's failure path queues them.
        async with asyncio.timeout(CASE_LOOKUP_WAIT_S):
            case = await self._store.get(number)
        if case is None:
            return None
        return CaseStatusInfo(case.number, str(case.status), case.deadline)
