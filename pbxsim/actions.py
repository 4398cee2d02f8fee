"""AMI actions: dispatch (auth, unknown actions) and the channel/system actions.

Queue actions live in queue_actions.py. Messages and their order are those of Asterisk's
manager.c / res_agi.c, as the reference transcripts show them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from . import lifecycle
from .agi import queue_command
from .ami_codec import AmiMessage, Fields, error, list_complete, list_start, success
from .channels import Channel
from .cli import run_command
from .events import channel_fields
from .originate import OriginateRequest, originate
from .variables import get_variable, parse_callerid, set_variable

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.ami")


class Session(Protocol):
    authenticated: bool
    username: str
    challenge: str
    session_id: str
    local_address: str
    remote_address: str
    started: float
    close_after_reply: bool

    def set_event_mask(self, mask: str) -> bool: ...
    def wants(self, privilege: str) -> bool: ...
    def release_events(self) -> None: ...


@dataclass
class ActionContext:
    core: PbxCore
    session: Session


Handler = Callable[[ActionContext, AmiMessage], Awaitable[list[Fields]]]
HANDLERS: dict[str, Handler] = {}


def action(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name.lower()] = fn
        return fn
    return register


def event_tv(epoch: float) -> str:
    ms = int((epoch % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{ms:03d}+0000"


def _security(ctx: ActionContext, event: str, severity: str, extra: Fields) -> None:
    ctx.core.emit_fields([("Event", event), ("Privilege", "security,all"),
                          ("EventTV", event_tv(ctx.core.clock.now())), ("Severity", severity),
                          ("Service", "AMI"), ("EventVersion", "1"), *extra])


async def dispatch(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    name = msg.action
    if not name:
        return [error(msg, "Missing action in request")]
    low = name.lower()
    if not ctx.session.authenticated and low not in ("login", "logoff", "challenge"):
        return [error(msg, "Permission denied")]
    handler = HANDLERS.get(low)
    if handler is None:
        s = ctx.session
        reply = [error(msg, f"Invalid/unknown command: {name}. Use Action: ListCommands to "
                            "show available commands.")]
        _security(ctx, "RequestBadFormat", "Error", [
            ("SessionID", s.session_id), ("LocalAddress", s.local_address),
            ("RemoteAddress", s.remote_address), ("RequestType", f"Action: {name}"),
            ("SessionTV", event_tv(s.started)), ("AccountID", s.username)])
        return reply
    return await handler(ctx, msg)


@action("Challenge")
async def a_challenge(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    if msg.get("AuthType").strip().lower() != "md5":
        return [error(msg, "Must specify AuthType")]
    if not ctx.session.challenge:
        ctx.session.challenge = str(ctx.core.rng.randrange(1, 2**31))
    return [success(msg, None, [("Challenge", ctx.session.challenge)])]


def _credentials_ok(ctx: ActionContext, msg: AmiMessage) -> bool:
    cfg, s = ctx.core.config, ctx.session
    if msg.get("Username") != cfg.username:
        return False
    if msg.get("AuthType").strip().lower() == "md5":
        expected = hashlib.md5((s.challenge + cfg.secret).encode()).hexdigest()
        return bool(s.challenge) and msg.get("Key").strip().lower() == expected
    return msg.get("Secret") == cfg.secret


@action("Login")
async def a_login(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    cfg, s = ctx.core.config, ctx.session
    ctx.core.login_attempts += 1
    if not _credentials_ok(ctx, msg):
        log.warning("AMI login refused for %r from %s", msg.get("Username"), s.remote_address)
        # manager.c delays the answer to a failed login, then drops the connection
        await ctx.core.clock.sleep(cfg.auth_failure_delay_s)
        s.close_after_reply = True
        return [error(msg, "Authentication failed")]
    s.authenticated, s.username = True, msg.get("Username")
    s.set_event_mask(msg.get("Events", "on") or "on")
    up = str(int(ctx.core.uptime()))
    booted: Fields = [("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", up),
                      ("LastReload", up), ("Status", "Fully Booted")]
    _security(ctx, "SuccessfulAuth", "Informational", [
        ("AccountID", s.username), ("SessionID", s.session_id),
        ("LocalAddress", s.local_address), ("RemoteAddress", s.remote_address),
        ("UsingPassword", "0"), ("SessionTV", event_tv(s.started))])
    log.info("AMI client %s logged in as %s", s.remote_address, s.username)
    # manager.c sends FullyBooted only to sessions that receive system events
    return [success(msg, "Authentication accepted"), *([booted] if s.wants("system") else [])]


@action("Logoff")
async def a_logoff(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    ctx.session.close_after_reply = True
    return [[("Response", "Goodbye"), *([("ActionID", msg.action_id)] if msg.action_id else []),
             ("Message", "Thanks for all the fish.")]]


@action("Ping")
async def a_ping(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    return [success(msg, None, [("Ping", "Pong"),
                                ("Timestamp", f"{ctx.core.clock.now():.6f}")])]


@action("Events")
async def a_events(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    on = ctx.session.set_event_mask(msg.get("EventMask", "on") or "on")
    return [[("Response", "Success"), *([("ActionID", msg.action_id)] if msg.action_id else []),
             ("Events", "On" if on else "Off")]]


@action("ListCommands")
async def a_listcommands(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    return [success(msg, None, [(name, f"{name}. (Priv: all)") for name in sorted(HANDLERS)])]


@action("Command")
async def a_command(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    command = msg.get("Command").strip()
    if not command:
        return [error(msg, "No command provided")]
    lines = run_command(ctx.core, command)
    return [success(msg, "Command output follows", [("Output", line) for line in lines])]


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@action("CoreShowChannels")
async def a_coreshowchannels(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    core = ctx.core
    out = [list_start(msg, "Channels will follow")]
    aid = [("ActionID", msg.action_id)] if msg.action_id else []
    for c in core.channels.asterisk_order():
        out.append([("Event", "CoreShowChannel"), *aid, *channel_fields(c),
                    ("Application", c.appl), ("ApplicationData", c.data),
                    ("Duration", _duration(core.clock.now() - c.created)),
                    ("BridgeId", c.bridge.uniqueid if c.bridge else "")])
    out.append(list_complete(msg, "CoreShowChannelsComplete", len(out) - 1))
    return out


@action("Status")
async def a_status(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    core = ctx.core
    wanted = msg.get("Channel").strip()
    chans = [c for c in core.channels.asterisk_order()
             if not wanted or c.name.lower() == wanted.lower()]
    if wanted and not chans:
        return [error(msg, "No such channel")]
    out = [list_start(msg, "Channel status will follow")]
    aid = [("ActionID", msg.action_id)] if msg.action_id else []
    for c in chans:
        out.append([("Event", "Status"), ("Privilege", "Call"), *channel_fields(c),
                    ("Type", c.tech), ("DNID", c.dnid or ""),
                    ("TimeToHangup", "0"), ("BridgeID", c.bridge.uniqueid if c.bridge else ""),
                    ("Application", c.appl), ("Data", c.data),
                    ("Seconds", str(int(core.clock.now() - c.created))), *aid])
    out.append([("Event", "StatusComplete"), *aid, ("EventList", "Complete"),
                ("ListItems", str(len(chans))), ("Items", str(len(chans)))])
    return out


@action("Getvar")
async def a_getvar(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    var, name = msg.get("Variable").strip(), msg.get("Channel").strip()
    if not var:
        return [error(msg, "No variable specified")]
    chan = None
    if name:
        chan = ctx.core.channels.get(name)
        if chan is None:
            return [error(msg, "No such channel")]
    value = get_variable(ctx.core, chan, var) or ""
    return [success(msg, None, [("Variable", var), ("Value", value)])]


@action("Setvar")
async def a_setvar(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    var, name = msg.get("Variable").strip(), msg.get("Channel").strip()
    if not var:
        return [error(msg, "No variable specified")]
    chan = None
    if name:
        chan = ctx.core.channels.get(name)
        if chan is None:
            return [error(msg, "No such channel")]
    if not set_variable(ctx.core, chan, var, msg.get("Value")):
        return [error(msg, "Variable not set")]
    return [success(msg, "Variable Set")]


async def _hangup_in_order(core: PbxCore, chans: list[Channel], cause: int) -> None:
    """Hang the channels up one after the other, in the order they were listed.

    Asterisk soft-hangs them all at once and their threads race; one at a time gives the
    order the recording shows (a Local ;1 gone first hangs its ;2 up with its own cause)
    and keeps runs reproducible.
    """
    for chan in chans:
        if not chan.hungup:
            lifecycle.request_hangup(core, chan, cause)
            await lifecycle.wait_any(core, [chan.gone], 1.0)


@action("Hangup")
async def a_hangup(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    core, target = ctx.core, msg.get("Channel").strip()
    if not target:
        return [error(msg, "No channel specified")]
    cause_s = msg.get("Cause").strip()
    cause = int(cause_s) if cause_s.isdigit() and int(cause_s) <= 127 else 0
    if len(target) > 1 and target.startswith("/") and target.endswith("/"):
        try:
            regex = re.compile(target[1:-1])
        except re.error:
            return [error(msg, f"Regex compile failed on: {target[1:-1]}")]
        matched = [c for c in core.channels.asterisk_order() if regex.search(c.name)]
        aid = [("ActionID", msg.action_id)] if msg.action_id else []
        out = [list_start(msg, "Channels hung up will follow")]
        out += [[("Event", "ChannelHungup"), ("Channel", c.name), *aid] for c in matched]
        out.append(list_complete(msg, "ChannelsHungupListComplete", len(matched)))
        core.spawn(_hangup_in_order(core, matched, cause), f"hangup {target}")
        log.info("AMI hangup of %d channels matching %s", len(matched), target)
        return out
    chan = core.channels.get(target)
    if chan is None:
        return [error(msg, "No such channel")]
    lifecycle.request_hangup(core, chan, cause)
    log.info("AMI hangup of %s", chan.name)
    return [success(msg, "Channel Hungup")]


@action("Redirect")
async def a_redirect(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    core = ctx.core
    name = msg.get("Channel").strip()
    if not name:
        return [error(msg, "Channel not specified")]
    context, exten = msg.get("Context").strip(), msg.get("Exten").strip()
    prio_s = msg.get("Priority").strip() or "1"
    prio = core.dialplan.resolve_priority(context, exten, prio_s)
    if prio is None:
        return [error(msg, "Invalid priority")]
    chans = [name] + ([x] if (x := msg.get("ExtraChannel").strip()) else [])
    found = []
    for n in chans:
        chan = core.channels.get(n)
        if chan is None:
            return [error(msg, f"Channel does not exist: {n}")]
        found.append(chan)
    for chan in found:
        if not chan.pbx_running:
            log.warning("Redirect of %s: channel runs no dialplan in the simulation", chan.name)
            return [error(msg, "Redirect failed")]
    for chan in found:
        lifecycle.request_goto(chan, context, exten, prio)
        log.info("AMI redirect of %s to %s@%s:%d", chan.name, exten, context, prio)
    return [success(msg, "Redirect successful")]


@action("Originate")
async def a_originate(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    core = ctx.core
    channel = msg.get("Channel").strip()
    if not channel:
        return [error(msg, "Channel not specified")]
    context, exten = msg.get("Context").strip(), msg.get("Exten").strip()
    prio_s = msg.get("Priority").strip()
    prio = 1
    if prio_s:
        resolved = core.dialplan.resolve_priority(context, exten, prio_s)
        if resolved is None:
            return [error(msg, "Invalid priority")]
        prio = resolved
    timeout_s = msg.get("Timeout").strip()
    if timeout_s and not timeout_s.lstrip("-").isdigit():
        return [error(msg, "Invalid timeout")]
    if "/" not in channel:
        return [error(msg, "Invalid channel")]
    name, num = parse_callerid(msg.get("CallerID"))
    variables: list[tuple[str, str]] = []
    for header in msg.get_all("Variable"):
        for item in header.split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                variables.append((key.strip(), value))
    req = OriginateRequest(channel, context, exten, prio, msg.get("Application").strip(),
                           msg.get("Data"), num, name,
                           int(timeout_s) / 1000 if timeout_s and int(timeout_s) > 0 else 30.0,
                           variables, msg.action_id, msg.get("Account"))
    if msg.get("Async").strip().lower() in ("yes", "true", "y", "t", "1", "on"):
        core.spawn(originate(core, req, publish_response=True), f"originate {channel}")
        return [success(msg, "Originate successfully queued")]
    ctx.session.release_events()
    ok = await originate(core, req, publish_response=False)
    return [success(msg, "Originate successfully queued") if ok else error(msg, "Originate failed")]


@action("AGI")
async def a_agi(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    name, command = msg.get("Channel").strip(), msg.get("Command").strip()
    if not name or not command:
        return [error(msg, "Both, Channel and Command are *required*")]
    chan = ctx.core.channels.get(name)
    if chan is None:
        return [error(msg, f"Channel {name} does not exist.")]
    if not queue_command(chan, command, msg.get("CommandID").strip()):
        return [error(msg, f"Failed to add AGI command to channel {chan.name} queue")]
    return [success(msg, "Added AGI command to queue")]

