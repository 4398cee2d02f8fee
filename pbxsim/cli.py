"""The few CLI commands reachable through the AMI Command action."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .channels import STATE_DESC

if TYPE_CHECKING:
    from .core import PbxCore

_FORMAT = "{:<64.64} {:<32.32} {:<7.7} {:<30.30}"


def core_show_channels(core: PbxCore, concise: bool = False) -> list[str]:
    chans = core.channels.asterisk_order()
    if concise:
        return ["!".join([c.name, c.context, c.exten, str(c.priority),
                          STATE_DESC.get(c.state, "Unknown"), c.appl, c.data,
                          c.caller_num or "", c.accountcode, "", "3",
                          str(int(core.clock.now() - c.created)),
                          c.bridge.uniqueid if c.bridge else "(None)", c.uniqueid])
                for c in chans]
    lines = [_FORMAT.format("Channel", "Location", "State", "Application(Data)")]
    for c in chans:
        lines.append(_FORMAT.format(c.name, f"{c.exten}@{c.context}:{c.priority}",
                                    STATE_DESC.get(c.state, "Unknown"), f"{c.appl}({c.data})"))
    calls = core.active_calls()
    lines.append(f"{len(chans)} active channel{'' if len(chans) == 1 else 's'}")
    lines.append(f"{calls} active call{'' if calls == 1 else 's'}")
    lines.append(f"{core.calls_processed} call{'' if core.calls_processed == 1 else 's'} processed")
    return lines


def run_command(core: PbxCore, command: str) -> list[str]:
    words = command.split()
    low = [w.lower() for w in words]
    if low[:3] == ["core", "show", "channels"]:
        return core_show_channels(core, concise=low[3:4] == ["concise"])
    if low[:3] == ["core", "show", "uptime"]:
        up = int(core.uptime())
        return [f"System uptime: {up} seconds", f"Last reload: {up} seconds"]
    if low[:3] == ["core", "show", "version"]:
        return ["Asterisk 13.0.0 (pbxsim)"]
    return [(f"No such command '{command}' (type 'core show help {command}' for other possible "
             "commands)")]
