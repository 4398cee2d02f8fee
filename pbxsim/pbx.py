"""Running a channel through the dialplan (Asterisk's __ast_pbx_run)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from . import lifecycle
from .apps import execute
from .channels import Channel
from .variables import expand

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.pbx")


def _apply_goto(chan: Channel) -> None:
    target = chan.async_goto
    if target is None:
        return
    chan.context, chan.exten, chan.priority = target
    chan.async_goto = None
    if not chan.softhangup:
        chan.interrupted.clear()


async def run_pbx(core: PbxCore, chan: Channel) -> None:
    """Execute priorities until an application returns non-zero or the extension runs out."""
    core.calls_processed += 1
    chan.pbx_running = True
    log.info("%s enters the dialplan at %s@%s:%d", chan.name, chan.exten, chan.context,
             chan.priority)
    try:
        while not chan.softhangup:
            _apply_goto(chan)
            ext = core.dialplan.find_extension(chan.context, chan.exten)
            step = ext.steps.get(chan.priority) if ext is not None else None
            if step is None:
                if ext is None:
                    log.warning("%s: no extension %s in context %s", chan.name, chan.exten,
                                chan.context)
                break
            data = expand(core, chan, step.args)
            chan.appl, chan.data = step.app, data
            core.emit("Newexten", "dialplan", chan, [("Extension", chan.exten),
                                                     ("Application", step.app),
                                                     ("AppData", data)])
            try:
                res = await execute(core, chan, step.app, data)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: %s(%s) failed", chan.name, step.app, data)
                res = -1
            if chan.async_goto is not None and not chan.softhangup:
                continue
            if res != 0:
                break
            chan.priority += 1
    finally:
        chan.pbx_running = False
        if not _cancelling():  # a simulator shutting down emits nothing more
            lifecycle.finish_hangup(core, chan, ran_pbx=True)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
