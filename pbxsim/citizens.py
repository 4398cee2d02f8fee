"""Simulated citizens: a scripted phone on the ``;1`` half of a Local call into the IVR.

The citizen answers prompts: each DTMF prompt (GET DATA, STREAM FILE with escape digits, ...)
gets the next entry of ``keys`` pressed ``delay`` seconds after the prompt started; each
AudioSocket session gets ``speech_wav`` spoken after ``speech_delay_s``. A key the IVR dropped
(pressed after its prompt ended, while nothing read keys) is pressed again into the next
AudioSocket session if ``repeat_dropped_keys_after_s`` is set. In a queue it waits
``patience_s`` before hanging up (an abandoned call); after talking to an agent it hangs up
``hangup_after_talk_s`` later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import lifecycle, media
from .channels import Channel, Notice
from .local import create_pair, emit_local_bridge
from .variables import set_callerid, set_connected, set_variable

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.citizens")


@dataclass
class CitizenScript:
    caller_num: str = "13800138000"
    caller_name: str = ""
    dnid: str = "12345"
    context: str = "ivr"
    exten: str = "s"
    keys: Sequence[tuple[str, float]] = ()
    speech_wav: Path | None = None
    speech_delay_s: float = 0.3
    # Pressed into every AudioSocket session, whatever happened before.
    keys_during_speech: Sequence[tuple[str, float]] = ()
    # A caller who hears no reaction to a key (the IVR dropped it) presses it again this long
    # into the IVR's next listening (AudioSocket), once; a new prompt asks for a new key.
    repeat_dropped_keys_after_s: float | None = None
    # Pressed after joining a queue (app_queue's exit keys), each (digits, delay) once.
    keys_in_queue: Sequence[tuple[str, float]] = ()
    # A call the centre places to this citizen (PbxSim.expect_call) is answered this late.
    answer_after_s: float = 1.0
    patience_s: float = 120.0
    hangup_after_s: float | None = None
    hangup_after_talk_s: float | None = 1.0
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallOutcome:
    """How a simulated call ended (durations in simulated seconds)."""

    phone_channel: str      # the citizen's half, Local/...;1
    ivr_channel: str        # the half the IVR and the service handle, Local/...;2
    ivr_uniqueid: str       # its Uniqueid: the call id the service sees in AsyncAGIStart
    answered_by: str | None
    queue: str | None
    abandoned: bool
    wait_s: float
    talk_s: float
    hangup_cause: int
    hung_up_by_citizen: bool
    keys_pressed: str
    speech_sessions: int

    @property
    def caller_uniqueid(self) -> str:
        """The caller's Uniqueid as the service sees it (the IVR half)."""
        return self.ivr_uniqueid


@dataclass(eq=False)
class CallHandle:
    phone_channel: str
    ivr_channel: str
    ivr_uniqueid: str
    done: asyncio.Future[CallOutcome]
    _citizen: Citizen

    def hangup(self) -> None:
        """The citizen hangs up now."""
        self._citizen.request_hangup()


class Citizen:
    def __init__(self, core: PbxCore, script: CitizenScript, phone: Channel, ivr: Channel,
                 *, called: bool = False) -> None:
        self.core, self.script, self.phone, self.ivr = core, script, phone, ivr
        # Called by the centre (Originate): the dialer reports the answer, not the phone.
        self.called = called
        self._queue_keys = list(script.keys_in_queue)
        self._notices: list[Notice] = []
        self._wake = asyncio.Event()
        self._hangup = False
        self._keys = list(script.keys)
        self._dropped = ""          # keys the IVR dropped, not yet pressed again
        self._helpers: set[asyncio.Task[None]] = set()
        self._pcm: bytes | None = media.load_audio(script.speech_wav) if script.speech_wav else None
        self.queue: str | None = None
        self.answered_by: str | None = None
        self.abandoned = False
        self.in_queue_since: float | None = None
        self.talk_since: float | None = None
        self.wait_s = 0.0
        self.talk_s = 0.0
        self.by_citizen = False
        self.pressed = ""
        self.speech_sessions = 0

    def notice(self, notice: Notice) -> None:
        self._notices.append(notice)
        self._wake.set()

    def request_hangup(self) -> None:
        self._hangup = True
        self._wake.set()

    def _helper(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = self.core.spawn(coro, f"citizen {name} {self.phone.name}")
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    async def _press(self, digits: str, delay: float) -> None:
        if await lifecycle.sleep(self.core, self.phone, delay):
            self.pressed += digits
            log.info("citizen %s presses %s", self.script.caller_num, digits)
            await media.send_dtmf(self.core, self.phone, digits, lead_s=0.0)

    async def _speak(self, delay: float) -> None:
        if self._pcm is not None and await lifecycle.sleep(self.core, self.phone, delay):
            log.info("citizen %s speaks (%.1f s)", self.script.caller_num,
                     len(self._pcm) / media.BYTES_PER_SECOND)
            media.write_audio(self.phone, self._pcm)

    def _handle(self, n: Notice, now: float) -> None:
        s = self.script
        if n.kind == "dtmf_prompt":
            self._dropped = ""      # the caller answers the new prompt instead
            if self._keys:
                digits, delay = self._keys.pop(0)
                self._helper(self._press(digits, delay), "keys")
        elif n.kind == "dtmf_dropped" and s.repeat_dropped_keys_after_s is not None:
            self._dropped += n.digits
        elif n.kind == "audio_prompt":
            self.speech_sessions += 1
            self._helper(self._speak(s.speech_delay_s), "speech")
            for digits, delay in s.keys_during_speech:
                self._helper(self._press(digits, delay), "keys")
            if self._dropped and s.repeat_dropped_keys_after_s is not None:
                self._helper(self._press(self._dropped, s.repeat_dropped_keys_after_s),
                             "keys again")
                self._dropped = ""
        elif n.kind == "queue_join":
            self.queue, self.in_queue_since = n.queue, now
            for digits, delay in self._queue_keys:
                self._helper(self._press(digits, delay), "queue keys")
            self._queue_keys = []
        elif n.kind in ("queue_leave", "connected") and self.in_queue_since is not None:
            self.wait_s += now - self.in_queue_since
            self.in_queue_since = None
            self.abandoned = self.abandoned or n.reason == "abandon"
            if n.kind == "connected":
                self.answered_by, self.talk_since = n.member, now
        elif n.kind == "unbridged" and self.talk_since is not None:
            self.talk_s += now - self.talk_since
            self.talk_since = None

    async def run(self, done: asyncio.Future[CallOutcome]) -> None:
        core, phone, s = self.core, self.phone, self.script
        start = core.clock.now()
        hangup_at = start + s.hangup_after_s if s.hangup_after_s is not None else None
        after_talk_at: float | None = None
        answered = False
        try:
            while True:
                now = core.clock.now()
                patience_at = (self.in_queue_since + s.patience_s
                               if self.in_queue_since is not None else None)
                deadlines = [d for d in (hangup_at, patience_at, after_talk_at) if d is not None]
                events = [phone.interrupted, self._wake] + ([] if answered else [phone.answered])
                self._wake.clear()
                idx = await lifecycle.wait_any(core, events,
                                               min(deadlines) - now if deadlines else None)
                now = core.clock.now()
                if phone.interrupted.is_set():
                    lifecycle.finish_hangup(core, phone, ran_pbx=False)
                    break
                if not answered and phone.answered.is_set():
                    answered = True
                    if not self.called:
                        core.emit("DialEnd", "call", None, [("DialStatus", "ANSWER")],
                                  dest=phone)
                notices, self._notices = self._notices, []
                for n in notices:
                    self._handle(n, now)
                    if n.kind == "unbridged" and s.hangup_after_talk_s is not None:
                        after_talk_at = now + s.hangup_after_talk_s
                if self._hangup or (idx is None and deadlines and now >= min(deadlines) - 1e-6):
                    self.by_citizen = True
                    log.info("citizen %s hangs up", s.caller_num)
                    lifecycle.hangup_now(core, phone, 16)
                    break
        finally:
            for task in list(self._helpers):
                task.cancel()
            now = core.clock.now()
            if self.in_queue_since is not None:
                self.wait_s += now - self.in_queue_since
                self.abandoned = True
            if self.talk_since is not None:
                self.talk_s += now - self.talk_since
            if not done.done():
                done.set_result(CallOutcome(
                    phone.name, self.ivr.name, self.ivr.uniqueid, self.answered_by, self.queue,
                    self.abandoned, round(self.wait_s, 3), round(self.talk_s, 3), phone.hangupcause,
                    self.by_citizen, self.pressed, self.speech_sessions))


async def _answer_later(core: PbxCore, phone: Channel, delay_s: float) -> None:
    if await lifecycle.sleep(core, phone, delay_s):
        lifecycle.answer(core, phone)      # the ;2 half: chan_local answers ;1, the dialer


def answer_call(core: PbxCore, script: CitizenScript, dialer: Channel, phone: Channel
                ) -> CallHandle:
    """A citizen picks up a call the centre placed: ``phone`` is the ``;2`` half of the
    originated Local channel (no dialplan runs on it), ``dialer`` the ``;1`` half that runs
    the Originate's context once answered."""
    citizen = Citizen(core, script, phone, dialer, called=True)
    phone.endpoint = citizen
    loop = asyncio.get_running_loop()
    handle = CallHandle(phone.name, dialer.name, dialer.uniqueid, loop.create_future(), citizen)
    core.spawn(citizen.run(handle.done), f"citizen {phone.name}")
    citizen._helper(_answer_later(core, phone, script.answer_after_s), "answer")
    log.info("citizen %s is called via %s", script.caller_num, dialer.name)
    return handle


def place_call(core: PbxCore, script: CitizenScript) -> CallHandle:
    """Dial ``Local/<exten>@<context>`` for a citizen: ;2 runs the dialplan, ;1 is the phone."""
    phone, ivr = create_pair(core, script.exten, script.context)
    phone.appl, phone.data = "AppDial2", "(Outgoing Line)"
    core.emit("Newexten", "dialplan", phone, [("Extension", phone.exten),
                                              ("Application", phone.appl),
                                              ("AppData", phone.data)])
    for name, value in script.variables.items():
        set_variable(core, phone, name, value)
    cid_name = script.caller_name or None
    set_callerid(core, phone, script.caller_num, cid_name)
    set_connected(core, phone, script.caller_num, cid_name)
    for var, value in script.variables.items():
        set_variable(core, ivr, var, value)
    ivr.dnid = phone.dnid = script.dnid or None
    ivr.conn_num, ivr.conn_name = script.caller_num, cid_name
    set_callerid(core, ivr, script.caller_num, cid_name)
    core.emit("NewConnectedLine", "call", ivr)
    emit_local_bridge(core, phone, ivr)
    core.emit("DialBegin", "call", None, [("DialString", f"{script.exten}@{script.context}/n")],
              dest=phone)
    citizen = Citizen(core, script, phone, ivr)
    phone.endpoint = citizen
    loop = asyncio.get_running_loop()
    handle = CallHandle(phone.name, ivr.name, ivr.uniqueid, loop.create_future(), citizen)
    from .pbx import run_pbx

    core.spawn(run_pbx(core, ivr), f"pbx {ivr.name}")
    core.spawn(citizen.run(handle.done), f"citizen {phone.name}")
    log.info("citizen %s (%s) calls %s via %s", script.caller_num, script.caller_name,
             script.dnid, ivr.name)
    return handle
