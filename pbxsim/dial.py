"""Outbound legs app_queue rings: a Local pair per member (or the agent's own channel)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import lifecycle
from .agents import run_agent
from .channels import DOWN, Channel
from .devices import local_device
from .local import create_pair, emit_local_bridge
from .variables import set_callerid, set_connected, set_variable

if TYPE_CHECKING:
    from .agents import AgentSpec
    from .core import PbxCore
    from .queues import CallQueue, QueueMember

log = logging.getLogger("pbxsim.dial")


@dataclass(eq=False)
class Leg:
    member: QueueMember
    near: Channel          # the channel bridged with the caller
    far: Channel | None    # the Local ;2 half running the agent (None: near is the agent's)

    def drop(self, core: PbxCore, cause: int = 0) -> None:
        """Hang the leg up from the queue's side."""
        if cause and not self.near.hangupcause:
            self.near.hangupcause = cause
        if self.far is not None:
            lifecycle.finish_hangup(core, self.near, ran_pbx=False)
        else:
            lifecycle.request_hangup(core, self.near, cause)


def find_agent(core: PbxCore, interface: str) -> AgentSpec | None:
    return core.agents.get(interface.lower())


def _called_events(core: PbxCore, caller: Channel, near: Channel, q: CallQueue,
                   member: QueueMember) -> None:
    core.emit("AgentCalled", "agent", caller,
              [("Queue", q.name), ("Interface", member.interface),
               ("MemberName", member.membername)],
              dest=near, dest_overrides={"Exten": "s",
                                         "ConnectedLineNum": caller.caller_num or "<unknown>",
                                         "ConnectedLineName": caller.caller_name or "<unknown>"})
    core.emit("DialBegin", "call", caller, [("DialString", member.interface)], dest=near)


def start_leg(core: PbxCore, caller: Channel, q: CallQueue, member: QueueMember) -> Leg | None:
    """Create and ring the member's leg; None when the interface cannot be dialed."""
    iface = member.interface
    spec = find_agent(core, iface)
    loc = local_device(iface)
    if loc is not None:
        exten, context = loc
        if spec is None and not core.dialplan.exists(context, exten):
            log.warning("queue %s: cannot dial %s (no such extension)", q.name, iface)
            return None
        near, far = create_pair(core, exten, context, linkedid=caller.linkedid)
        near.appl, near.data = "AppQueue", "(Outgoing Line)"
        near.caller_num, near.caller_name = caller.caller_num, caller.caller_name
        core.emit("Newexten", "dialplan", near, [("Extension", exten), ("Application", near.appl),
                                                 ("AppData", near.data)])
        core.emit("NewCallerid", "call", near, [("CID-CallingPres",
                                                 "0 (Presentation Allowed, Not Screened)")])
        dialed = iface.split("/", 1)[1]
        set_variable(core, near, "DIALEDPEERNUMBER", dialed)
        set_variable(core, far, "DIALEDPEERNUMBER", dialed)
        far.caller_num, far.caller_name = caller.caller_num, caller.caller_name
        set_callerid(core, far, caller.caller_num, caller.caller_name)
        set_connected(core, far, caller.caller_num, caller.caller_name)
        emit_local_bridge(core, near, far)
        _called_events(core, caller, near, q, member)
        near.exten = "s"  # app_queue's outgoing channel shows exten s once it is up
        if spec is not None:
            core.spawn(run_agent(core, spec, far), f"agent {far.name}")
        else:
            from .pbx import run_pbx  # the pbx runs queues (via apps) and queues run pbx legs

            core.spawn(run_pbx(core, far), f"pbx {far.name}")
        return Leg(member, near, far)
    if spec is not None:
        tech, _, resource = iface.partition("/")
        n = core.channels.next_counter(tech)
        near = core.channels.create(f"{iface}-{n:08x}", tech, "default", resource, state=DOWN,
                                    linkedid=caller.linkedid)
        near.caller_num, near.caller_name = caller.caller_num, caller.caller_name
        near.conn_num, near.conn_name = caller.caller_num, caller.caller_name
        core.emit("Newchannel", "call", near)
        _called_events(core, caller, near, q, member)
        core.spawn(run_agent(core, spec, near), f"agent {near.name}")
        return Leg(member, near, None)
    log.warning("queue %s: member %s is not reachable", q.name, iface)
    return None
