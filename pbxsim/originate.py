"""AMI Originate of Local channels, with chan_local's and the dialer's event sequence."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import lifecycle
from .ami_codec import Fields
from .apps import execute
from .channels import Channel
from .citizens import answer_call
from .local import create_pair, emit_local_bridge, parse_local
from .variables import set_callerid, set_connected, set_variable

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.originate")

REASON_FAILURE, REASON_NO_ANSWER, REASON_ANSWERED = 0, 3, 4


@dataclass
class OriginateRequest:
    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    data: str = ""
    caller_num: str | None = None
    caller_name: str | None = None
    timeout_s: float = 30.0
    variables: list[tuple[str, str]] = field(default_factory=list)
    action_id: str = ""
    account: str = ""


def _response_event(req: OriginateRequest, ok: bool, reason: int, chan: Channel | None) -> Fields:
    fields: Fields = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
    if req.action_id:
        fields.append(("ActionID", req.action_id))
    fields += [("Response", "Success" if ok else "Failure"),
               ("Channel", chan.name if chan is not None else req.channel),
               ("Context", req.context), ("Exten", req.exten), ("Reason", str(reason)),
               ("Uniqueid", chan.uniqueid if chan is not None else "<unknown>"),
               ("CallerIDNum", req.caller_num or "<unknown>"),
               ("CallerIDName", req.caller_name or "<unknown>")]
    return fields


async def _run_outgoing(core: PbxCore, one: Channel, req: OriginateRequest) -> None:
    """What the answered ;1 half does: the given dialplan location or application."""
    if req.application:
        one.appl, one.data = req.application, req.data
        core.calls_processed += 1
        one.pbx_running = True
        try:
            await execute(core, one, req.application, req.data)
        finally:
            one.pbx_running = False
        lifecycle.finish_hangup(core, one, ran_pbx=True)
        return
    from .pbx import run_pbx

    one.context, one.exten, one.priority = req.context, req.exten, req.priority
    await run_pbx(core, one)


async def originate(core: PbxCore, req: OriginateRequest, *, publish_response: bool) -> bool:
    """Dial ``req.channel``; on answer ;1 continues at context/exten or the application."""
    tech, _, data = req.channel.partition("/")
    if tech.lower() != "local":
        log.warning("Originate %s: only Local channels are simulated", req.channel)
        if publish_response:
            core.emit_fields(_response_event(req, False, REASON_FAILURE, None))
        return False
    exten, context, _opts = parse_local(data)
    # A simulated citizen waiting for this call (PbxSim.expect_call) picks it up.
    called = core.expected_calls.pop((context, exten), None)
    if called is None and not core.dialplan.exists(context, exten):
        # chan_local refuses the call: the response comes first, then both halves go away
        if publish_response:
            core.emit_fields(_response_event(req, False, REASON_FAILURE, None))
        one, two = create_pair(core, exten, context)
        one.local_peer = two.local_peer = None
        core.emit("Newexten", "dialplan", one, [("Extension", exten), ("Application", "AppDial2"),
                                                ("AppData", "(Outgoing Line)")])
        lifecycle.finish_hangup(core, two, ran_pbx=False)
        lifecycle.finish_hangup(core, one, ran_pbx=False)
        log.info("Originate %s failed: no extension %s@%s", req.channel, exten, context)
        return False
    one, two = create_pair(core, exten, context)
    one.appl, one.data = "AppDial2", "(Outgoing Line)"
    one.accountcode = two.accountcode = req.account
    core.emit("Newexten", "dialplan", one, [("Extension", exten), ("Application", one.appl),
                                            ("AppData", one.data)])
    for name, value in req.variables:
        set_variable(core, one, name, value)
    if req.caller_num or req.caller_name:
        set_callerid(core, one, req.caller_num, req.caller_name)
        set_connected(core, one, req.caller_num, req.caller_name)
    for name, value in req.variables:
        set_variable(core, two, name, value)
    if req.caller_num or req.caller_name:
        two.conn_num, two.conn_name = req.caller_num, req.caller_name
        set_callerid(core, two, req.caller_num, req.caller_name)
        core.emit("NewConnectedLine", "call", two)
    emit_local_bridge(core, one, two)
    core.emit("DialBegin", "call", None, [("DialString", data)], dest=one)
    from .pbx import run_pbx

    if called is not None:
        script, handle_future = called
        handle_future.set_result(answer_call(core, script, one, two))
    else:
        core.spawn(run_pbx(core, two), f"pbx {two.name}")
    idx = await lifecycle.wait_any(core, [one.answered, one.interrupted], req.timeout_s)
    if idx != 0:
        status = "NOANSWER" if idx is None else "CANCEL"
        core.emit("DialEnd", "call", None, [("DialStatus", status)], dest=one)
        if publish_response:
            core.emit_fields(_response_event(req, False, REASON_NO_ANSWER if idx is None
                                             else REASON_FAILURE, None))
        lifecycle.finish_hangup(core, one, ran_pbx=False)
        log.info("Originate %s: not answered", req.channel)
        return False
    core.emit("DialEnd", "call", None, [("DialStatus", "ANSWER")], dest=one)
    task = core.spawn(_run_outgoing(core, one, req), f"pbx {one.name}")
    # Let the answered side run its first applications before the response, as Asterisk does.
    for _ in range(3):
        if task.done():
            break
        await asyncio.sleep(0)
    if publish_response:
        core.emit_fields(_response_event(req, True, REASON_ANSWERED, one))
    log.info("Originate %s answered; %s continues at %s", req.channel, one.name,
             req.application or f"{req.exten}@{req.context}")
    return True
