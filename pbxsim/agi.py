"""Async AGI: ``AGI(agi:async)`` parks the channel and runs commands queued over AMI.

Events follow res_agi: AsyncAGIStart with the URL-encoded environment, then for each command
AGIExecStart / AGIExecEnd (with Asterisk's own numeric CommandId) and AsyncAGIExec carrying the
client's CommandID and the URL-encoded result line, finally AsyncAGIEnd. Commands are picked up
on the channel's 100 ms poll, as Asterisk does for an idle Local channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import lifecycle, media
from .channels import Channel
from .expr import split_args
from .variables import set_variable

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.agi")

POLL_S = 0.1
AGI_VERSION = "UNKNOWN__and_probably_unsupported"


def url_encode(text: str) -> str:
    """ast_uri_encode with ast_uri_http: RFC 2396 unreserved characters stay as they are."""
    return quote(text, safe="-_.!~*'()")


@dataclass
class AgiCommand:
    text: str
    command_id: str


@dataclass(eq=False)
class AgiState:
    started: float
    commands: deque[AgiCommand]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def queue_command(chan: Channel, text: str, command_id: str) -> bool:
    """The AMI ``AGI`` action: False if the channel never entered async AGI.

    As res_agi: the command queue is a datastore the first ``AGI(agi:async)`` adds to the
    channel and nothing removes before hangup, so a channel that has left async AGI still
    takes commands ("Added AGI command to queue"); they run only if it enters it again.
    """
    if chan.agi_queue is None or chan.hungup:
        return False
    chan.agi_queue.append(AgiCommand(text, command_id))
    if chan.agi is not None:
        chan.agi.arrived.set()
    return True


def agi_env(core: PbxCore, chan: Channel, args: list[str]) -> str:
    thread_id = 140116917020352 + 4096 * int(chan.uniqueid.rsplit(".", 1)[1])
    lines = [
        ("agi_request", "async"), ("agi_channel", chan.name), ("agi_language", chan.language),
        ("agi_type", chan.tech), ("agi_uniqueid", chan.uniqueid), ("agi_version", AGI_VERSION),
        ("agi_callerid", chan.caller_num or "unknown"),
        ("agi_calleridname", chan.caller_name or "unknown"),
        ("agi_callingpres", "0"), ("agi_callingani2", "0"), ("agi_callington", "0"),
        ("agi_callingtns", "0"), ("agi_dnid", chan.dnid or "unknown"), ("agi_rdnis", "unknown"),
        ("agi_context", chan.context), ("agi_extension", chan.exten),
        ("agi_priority", str(chan.priority)), ("agi_enhanced", "0.0"),
        ("agi_accountcode", chan.accountcode), ("agi_threadid", str(thread_id)),
    ]
    lines += [(f"agi_arg_{i}", a) for i, a in enumerate(args, 1)]
    return "".join(f"{k}: {v}\n" for k, v in lines) + "\n"


async def run_agi(core: PbxCore, chan: Channel, data: str) -> int:
    from .agi_commands import execute_command

    args = split_args(data)
    if args[0].strip().lower() != "agi:async":
        log.warning("%s: AGI(%s): only agi:async is simulated", chan.name, args[0])
        set_variable(core, chan, "AGISTATUS", "FAILURE")
        return 0
    if chan.agi_queue is None:
        chan.agi_queue = deque()
    state = AgiState(core.clock.now(), chan.agi_queue)
    chan.agi = state
    core.emit("AsyncAGIStart", "agi", chan, [("Env", url_encode(agi_env(core, chan, args[1:])))])
    log.info("%s parked in async AGI", chan.name)
    status, res = "SUCCESS", 0
    try:
        while True:
            if chan.should_stop:
                status, res = "HANGUP", -1
                break
            if state.commands:
                outcome = await execute_command(core, chan, state.commands.popleft())
                if outcome == "break":
                    break
                if outcome == "failure" and not chan.should_stop:
                    status, res = "FAILURE", 0    # agi_exec_full: the dialplan goes on
                    break
                continue
            state.arrived.clear()
            idx = await lifecycle.wait_any(core, [state.arrived, chan.interrupted], None)
            if idx == 0:
                phase = (core.clock.now() - state.started) % POLL_S
                await core.clock.wait_event(chan.interrupted, POLL_S - phase)
            # Until it picks the command up, an idle async AGI reads and drops the caller's
            # DTMF (res_agi's async_agi_read_frame): a key between two commands is lost.
            media.drop_dtmf(chan)
    finally:
        chan.agi = None  # commands still queued stay queued, without a result
    core.emit("AsyncAGIEnd", "agi", chan)
    set_variable(core, chan, "AGISTATUS", status)
    log.info("%s leaves async AGI (%s)", chan.name, status)
    return res
