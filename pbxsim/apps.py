"""Dialplan applications: Answer, Set, Wait, SendDTMF, Playback, AGI, Queue, GotoIf, Hangup..."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from . import lifecycle, media
from .channels import UP, Channel, Notice
from .expr import is_true, split_args
from .variables import set_variable

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.apps")

App = Callable[["PbxCore", Channel, str], Awaitable[int]]


async def app_answer(core: PbxCore, chan: Channel, data: str) -> int:
    if chan.state == UP:
        return 0
    lifecycle.answer(core, chan)
    # __ast_answer waits up to 500 ms for the first voice frame of a freshly answered channel
    return 0 if await lifecycle.sleep(core, chan, 0.5) else -1


async def app_set(core: PbxCore, chan: Channel, data: str) -> int:
    name, sep, value = data.partition("=")
    if sep and name.strip():
        set_variable(core, chan, name.strip(), value)
    return 0


async def app_wait(core: PbxCore, chan: Channel, data: str) -> int:
    try:
        seconds = float(data) if data.strip() else 0.0
    except ValueError:
        seconds = 0.0
    return 0 if await lifecycle.sleep(core, chan, seconds) else -1


async def app_noop(core: PbxCore, chan: Channel, data: str) -> int:
    return 0


async def app_senddtmf(core: PbxCore, chan: Channel, data: str) -> int:
    args = split_args(data)
    between = float(args[1]) / 1000 if len(args) > 1 and args[1].strip() else 0.25
    duration = int(args[2]) if len(args) > 2 and args[2].strip().isdigit() else 100
    return 0 if await media.send_dtmf(core, chan, args[0], between, duration) else -1


async def app_playback(core: PbxCore, chan: Channel, data: str) -> int:
    files = split_args(data)[0]
    for name in files.split("&"):
        if not name.strip():
            continue
        result = await media.play(core, chan, name.strip())
        if result.stopped:
            return -1
    set_variable(core, chan, "PLAYBACKSTATUS", "SUCCESS")
    return 0


async def app_read(core: PbxCore, chan: Channel, data: str) -> int:
    """Read(var,filename,maxdigits,options,attempts,timeout)"""
    from .agi_commands import collect_digits

    args = split_args(data) + [""] * 6
    var, prompt = args[0].strip(), args[1].strip()
    maxdigits = int(args[2]) if args[2].strip().isdigit() else 255
    timeout = float(args[5]) if args[5].strip() else 0.0
    media.notify_far(chan, Notice("dtmf_prompt"))
    digits, status = await collect_digits(core, chan, prompt, timeout * 1000, maxdigits or 255)
    if status == "HANGUP":
        return -1
    set_variable(core, chan, var, digits)
    set_variable(core, chan, "READSTATUS", status)
    return 0


def goto(core: PbxCore, chan: Channel, target: str) -> bool:
    """Goto semantics: ``label`` | ``prio`` | ``exten,prio`` | ``context,exten,prio``."""
    parts = [p.strip() for p in target.split(",")]
    context, exten = chan.context, chan.exten
    if len(parts) == 3:
        context, exten, prio_s = parts
    elif len(parts) == 2:
        exten, prio_s = parts
    else:
        prio_s = parts[0]
    prio = core.dialplan.resolve_priority(context, exten, prio_s)
    if prio is None:
        log.warning("%s: Goto target %r does not exist", chan.name, target)
        return False
    chan.context, chan.exten = context, exten
    chan.priority = prio - 1  # the pbx loop adds one after the application returns
    return True


async def app_goto(core: PbxCore, chan: Channel, data: str) -> int:
    return 0 if goto(core, chan, data) else -1


async def app_gotoif(core: PbxCore, chan: Channel, data: str) -> int:
    cond, _, branches = data.partition("?")
    yes, _, no = branches.partition(":")
    target = yes if is_true(cond) else no
    if target.strip():
        return 0 if goto(core, chan, target) else -1
    return 0


async def app_hangup(core: PbxCore, chan: Channel, data: str) -> int:
    if data.strip().isdigit():
        chan.hangupcause = int(data)
    elif not chan.hangupcause:
        chan.hangupcause = 16
    return -1


async def app_agi(core: PbxCore, chan: Channel, data: str) -> int:
    from .agi import run_agi

    return await run_agi(core, chan, data)


async def app_queue(core: PbxCore, chan: Channel, data: str) -> int:
    from .queue_app import queue_exec

    return await queue_exec(core, chan, data)


async def app_audiosocket(core: PbxCore, chan: Channel, data: str) -> int:
    from .audiosocket_client import audiosocket_exec

    return await audiosocket_exec(core, chan, data)


async def app_echo(core: PbxCore, chan: Channel, data: str) -> int:
    await core.clock.wait_event(chan.interrupted, None)
    return -1


async def app_musiconhold(core: PbxCore, chan: Channel, data: str) -> int:
    args = split_args(data)
    duration = float(args[1]) if len(args) > 1 and args[1].strip() else None
    if duration is None:
        return await app_echo(core, chan, data)
    return 0 if await lifecycle.sleep(core, chan, duration) else -1


APPS: dict[str, App] = {
    "answer": app_answer, "set": app_set, "wait": app_wait, "noop": app_noop,
    "verbose": app_noop, "progress": app_noop, "ringing": app_noop, "log": app_noop,
    "senddtmf": app_senddtmf, "playback": app_playback, "read": app_read, "goto": app_goto,
    "gotoif": app_gotoif, "hangup": app_hangup, "agi": app_agi, "queue": app_queue,
    "audiosocket": app_audiosocket, "echo": app_echo, "musiconhold": app_musiconhold,
}


def find_app(name: str) -> App | None:
    return APPS.get(name.strip().lower())


async def execute(core: PbxCore, chan: Channel, app: str, data: str) -> int:
    impl = find_app(app)
    if impl is None:
        log.warning("%s: application %s is not simulated", chan.name, app)
        return -1
    return await impl(core, chan, data)
