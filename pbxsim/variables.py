"""Channel and global variables, the dialplan functions pbxsim knows, and VarSet events."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .channels import STATE_DESC, Channel
from .expr import is_true, substitute
from .lifecycle import set_absolute_timeout

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.variables")

CALLING_PRES = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")


def _split_func(name: str) -> tuple[str, str] | None:
    if name.endswith(")") and "(" in name:
        fname, _, rest = name.partition("(")
        return fname.strip().upper(), rest[:-1]
    return None


def _callerid_read(chan: Channel, arg: str) -> str:
    what = arg.split(",")[0].strip().lower()
    num, name = chan.caller_num or "", chan.caller_name or ""
    if what == "num":
        return num
    if what == "name":
        return name
    if what == "all":
        return f'"{name}" <{num}>' if name else num
    if what == "dnid":
        return chan.dnid or ""
    if what in ("ani", "ani-num"):
        return num
    return ""


def _channel_read(core: PbxCore, chan: Channel, arg: str) -> str:
    what = arg.strip().lower()
    values = {
        "name": chan.name, "language": chan.language, "uniqueid": chan.uniqueid,
        "linkedid": chan.linkedid, "state": STATE_DESC.get(chan.state, "Unknown"),
        "channeltype": chan.tech, "context": chan.context, "exten": chan.exten,
        "accountcode": chan.accountcode, "callid": chan.uniqueid,
    }
    return values.get(what, "")


def get_variable(core: PbxCore, chan: Channel | None, name: str) -> str | None:
    """Value of a variable or function as ``${name}`` would expand; None when unset."""
    func = _split_func(name)
    if func is not None:
        fname, arg = func
        if fname == "GLOBAL":
            return core.globals.get(arg.strip())
        if fname == "LEN":
            return str(len(arg))
        if fname == "ISNULL":
            return "1" if arg == "" else "0"
        if fname == "EXISTS":
            return "0" if arg == "" else "1"
        if fname == "IF":
            cond, _, rest = arg.partition("?")
            yes, _, no = rest.partition(":")
            return yes if is_true(cond) else no
        if fname == "DEVICE_STATE":
            return core.devices.custom_state(arg.strip())
        if fname == "TOUPPER":
            return arg.upper()
        if fname == "TOLOWER":
            return arg.lower()
        if chan is None:
            return None
        if fname == "CALLERID":
            return _callerid_read(chan, arg)
        if fname == "CHANNEL":
            return _channel_read(core, chan, arg)
        log.warning("function %s is not simulated", fname)
        return None
    if name == "EPOCH":
        return str(int(core.clock.now()))
    if chan is not None:
        builtins = {
            "CHANNEL": chan.name, "UNIQUEID": chan.uniqueid, "CONTEXT": chan.context,
            "EXTEN": chan.exten, "PRIORITY": str(chan.priority),
            "HANGUPCAUSE": str(chan.hangupcause), "LANGUAGE": chan.language,
            "CALLERIDNUM": chan.caller_num or "", "CALLERIDNAME": chan.caller_name or "",
        }
        if name in builtins:
            return builtins[name]
        stripped = name.lstrip("_")
        if stripped in chan.variables:
            return chan.variables[stripped]
    return core.globals.get(name)


def expand(core: PbxCore, chan: Channel | None, text: str) -> str:
    return substitute(text, lambda n: get_variable(core, chan, n) or "")


def emit_varset(core: PbxCore, chan: Channel | None, name: str, value: str) -> None:
    if chan is None:
        core.emit_fields([("Event", "VarSet"), ("Privilege", "dialplan,all"),
                          ("Channel", "none"), ("Uniqueid", "none"),
                          ("Variable", name), ("Value", value)])
    else:
        core.emit("VarSet", "dialplan", chan, [("Variable", name), ("Value", value)])


def set_callerid(core: PbxCore, chan: Channel, num: str | None, name: str | None) -> None:
    chan.caller_num, chan.caller_name = num, name
    core.emit("NewCallerid", "call", chan, [CALLING_PRES])


def set_connected(core: PbxCore, chan: Channel, num: str | None, name: str | None) -> None:
    chan.conn_num, chan.conn_name = num, name
    core.emit("NewConnectedLine", "call", chan)


def set_variable(core: PbxCore, chan: Channel | None, name: str, value: str) -> bool:
    """pbx_builtin_setvar_helper: functions are written, plain names set (global if no channel)."""
    func = _split_func(name)
    if func is not None:
        fname, arg = func
        if fname == "GLOBAL":
            key = arg.strip()
            if value == "":
                core.globals.pop(key, None)
            else:
                core.globals[key] = value
            emit_varset(core, None, key, value)
            return True
        if fname == "DEVICE_STATE":
            return core.devices.set_custom_state(arg.strip(), value)
        if chan is None:
            return False
        if fname == "CALLERID":
            what = arg.split(",")[0].strip().lower()
            if what == "num":
                set_callerid(core, chan, value, chan.caller_name)
            elif what == "name":
                set_callerid(core, chan, chan.caller_num, value)
            elif what == "dnid":
                chan.dnid = value
            elif what == "all":
                cid_name, cid_num = parse_callerid(value)
                set_callerid(core, chan, cid_num, cid_name)
            else:
                return False
            return True
        if fname == "TIMEOUT":
            if arg.strip().lower() == "absolute":
                return set_absolute_timeout(core, chan, value)
            return False
        if fname == "CHANNEL":
            if arg.strip().lower() == "language":
                chan.language = value
                return True
            if arg.strip().lower() == "accountcode":
                chan.accountcode = value
                return True
            return False
        log.warning("function %s cannot be written in the simulation", fname)
        return False
    if chan is None:
        if value == "":
            core.globals.pop(name, None)
        else:
            core.globals[name] = value
        emit_varset(core, None, name, value)
        return True
    stripped = name.lstrip("_")
    if value == "":
        chan.variables.pop(stripped, None)
    else:
        chan.variables[stripped] = value
    emit_varset(core, chan, name, value)
    return True


def parse_callerid(text: str) -> tuple[str | None, str | None]:
    """ast_callerid_parse: ``"Name" <num>`` / ``Name <num>`` / ``num`` -> (name, num)."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, _, num = text[:-1].rpartition("<")
        name = name.strip().strip('"').strip()
        return (name or None), (num.strip() or None)
    stripped = text.strip('"')
    if stripped and all(ch.isdigit() or ch in "+*#" for ch in stripped):
        return None, stripped
    return (stripped or None), None


def eval_condition(text: str) -> bool:
    return is_true(text)

