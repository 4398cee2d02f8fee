"""Channel state changes, hangups (with Asterisk's event sequence) and interruptible waits.

Hangup sequence, as the reference shows it: a channel whose dialplan ends publishes
SoftHangupRequest (Cause 16, the soft-hangup flag), its Local partner receives HangupRequest with
the hanging-up channel's cause, then Hangup with Cause/Cause-txt. A channel without dialplan (an
agent leg in a bridge, a simulated phone) has no SoftHangupRequest.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .channels import STATE_DESC, UP, Channel
from .events import CAUSE_TEXT

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.channels")


def set_state(core: PbxCore, chan: Channel, state: int) -> None:
    if chan.state == state or chan.hungup:
        return
    chan.state = state
    core.emit("Newstate", "call", chan)
    log.debug("%s is %s", chan.name, STATE_DESC.get(state, state))


def answer(core: PbxCore, chan: Channel) -> None:
    if chan.state == UP or chan.hungup:
        return
    chan.answered_at = core.clock.now()
    set_state(core, chan, UP)
    chan.answered.set()
    core.devices.channel_changed(chan.device)
    # chan_local: answering the ;2 half answers the ;1 half that dialed it
    peer = chan.local_peer
    if peer is not None and chan.name.endswith(";2") and peer.state != UP:
        answer(core, peer)


def request_hangup(core: PbxCore, chan: Channel, cause: int = 0) -> None:
    """Ask whatever drives ``chan`` to hang it up (AMI Hangup, the other Local half, a bridge)."""
    if chan.hungup:
        return
    if cause and not chan.hangupcause:
        chan.hangupcause = cause
    chan.softhangup = True
    chan.interrupted.set()


def request_goto(chan: Channel, context: str, exten: str, priority: int) -> None:
    """Redirect: the running application is interrupted and the dialplan resumes there."""
    chan.async_goto = (context, exten, priority)
    chan.interrupted.set()


def set_absolute_timeout(core: PbxCore, chan: Channel, value: str) -> bool:
    """TIMEOUT(absolute): ``value`` seconds from now the channel goes to the ``T`` extension
    of its context if there is one (what __ast_pbx_run does on AST_SOFTHANGUP_TIMEOUT),
    else it is hung up; 0 or empty clears it. False for a value Asterisk would refuse."""
    try:
        seconds = float(value) if value.strip() else 0.0
    except ValueError:
        return False
    if chan.absolute_timeout is not None:
        chan.absolute_timeout.cancel()
        chan.absolute_timeout = None
    if seconds <= 0:
        return True

    async def fire() -> None:
        await core.clock.sleep(seconds)
        chan.absolute_timeout = None
        if chan.hungup:
            return
        log.info("%s: absolute timeout", chan.name)
        if core.dialplan.find_extension(chan.context, "T") is not None:
            request_goto(chan, chan.context, "T", 1)
        else:
            request_hangup(core, chan, 19)      # AST_CAUSE_NO_ANSWER, as Asterisk sets it

    chan.absolute_timeout = core.spawn(fire(), f"timeout-{chan.name}")
    return True


def finish_hangup(core: PbxCore, chan: Channel, *, ran_pbx: bool) -> None:
    """Destroy ``chan``: events, Local partner notification, registry removal."""
    if chan.hungup:
        return
    chan.hungup = True
    chan.softhangup = True
    chan.interrupted.set()
    if chan.absolute_timeout is not None:
        chan.absolute_timeout.cancel()
        chan.absolute_timeout = None
    if ran_pbx:
        core.emit("SoftHangupRequest", "call", chan, [("Cause", "16")])
    cause = chan.hangupcause
    peer = chan.local_peer
    if peer is not None and not peer.hungup:
        core.emit("HangupRequest", "call", peer, [("Cause", str(cause))])
        request_hangup(core, peer, cause)
    core.emit("Hangup", "call", chan,
              [("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))])
    core.channels.remove(chan)
    for tap in chan.taps:
        tap.close()
    core.devices.channel_changed(chan.device)
    chan.gone.set()
    log.info("%s hung up, cause %d (%s)", chan.name, cause, CAUSE_TEXT.get(cause, "Unknown"))


def hangup_now(core: PbxCore, chan: Channel, cause: int = 16) -> None:
    """A simulated phone hangs up the channel it owns (no dialplan involved)."""
    if cause and not chan.hangupcause:
        chan.hangupcause = cause
    finish_hangup(core, chan, ran_pbx=False)


async def sleep(core: PbxCore, chan: Channel, seconds: float) -> bool:
    """Wait ``seconds`` of simulated time; False if the channel was hung up or redirected.

    DTMF that arrives meanwhile is read and dropped, as Asterisk's Wait() does.
    """
    interrupted = await core.clock.wait_event(chan.interrupted, seconds)
    chan.drain_dtmf()
    return not interrupted


async def read_digit(core: PbxCore, chan: Channel, timeout_s: float | None
                     ) -> tuple[str | None, bool]:
    """Next DTMF digit (or None on timeout) and whether the channel must stop."""
    if chan.should_stop:
        return None, True
    if not chan.dtmf.empty():
        return chan.dtmf.get_nowait(), False
    getter = asyncio.ensure_future(chan.dtmf.get())
    stopper = asyncio.ensure_future(chan.interrupted.wait())
    try:
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED,
                           timeout=None if timeout_s is None else core.clock.to_real(timeout_s))
    finally:
        for task in (getter, stopper):
            if not task.done():
                task.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result(), False
    return None, stopper.done() and not stopper.cancelled()


async def wait_any(core: PbxCore, events: list[asyncio.Event], timeout_s: float | None
                   ) -> int | None:
    """Index of the first of ``events`` to be set, or None after ``timeout_s``."""
    for i, ev in enumerate(events):
        if ev.is_set():
            return i
    waiters = [asyncio.ensure_future(ev.wait()) for ev in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED,
                           timeout=None if timeout_s is None else core.clock.to_real(timeout_s))
    finally:
        for w in waiters:
            if not w.done():
                w.cancel()
    for i, ev in enumerate(events):
        if ev.is_set():
            return i
    return None
