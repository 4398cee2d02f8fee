"""The supervisor's API: the live board (JSON and websocket), queue changes over AMI
(QueueAdd, QueueRemove, QueuePenalty, QueuePause), the routing parameters, the audit log and
the skill advisor. Every change is written to the audit log, refused ones too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.auth import Role
from console.board import board_snapshot
from console.context import CONSOLE, Console
from console.operator import PAUSE_REASONS, _json
from console.security import require_origin, session_of
from ivr.ami.errors import AmiActionError, AmiError

log = logging.getLogger("hotline.web.admin")

BOARD_TOPIC = "board"
_NAME = r"^[A-Za-z0-9_.@/:-]+$"


class MemberChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["add", "remove", "penalty", "pause", "resume"]
    queue: str = Field(min_length=1, max_length=64, pattern=_NAME)
    interface: str = Field(min_length=1, max_length=128, pattern=_NAME)
    member: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.@/:-]*$")
    penalty: int = Field(default=0, ge=0, le=10000)
    reason: str = Field(default="", max_length=64)


class ApplyProposal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=0)


def groups(console: Console) -> list[tuple[str, str]]:
    return [(g.name, g.queue) for g in console.service.config.routing.groups]


def board_json(console: Console) -> str:
    return json.dumps(board_snapshot(groups(console), console.service.live, console.stats),
                      ensure_ascii=False)


async def board(request: web.Request) -> web.Response:
    session_of(request, Role.SUPERVISOR)
    return web.Response(text=board_json(request.app[CONSOLE]), content_type="application/json")


async def board_ws(request: web.Request) -> web.WebSocketResponse:
    s = session_of(request, Role.SUPERVISOR)
    require_origin(request)
    console = request.app[CONSOLE]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=16 * 1024)
    await ws.prepare(request)
    await console.hub.serve(request, ws, role=s.user.role, user=s.user.name,
                            topics=[BOARD_TOPIC], hello=[board_json(console)], sid=s.sid)
    return ws


async def board_pusher(console: Console, changed: asyncio.Event) -> None:
    """Push the board to its screens while any is open, only when it changed (one
    serialisation per push, whatever the number of screens).

    ``changed`` is set by the queue events (a caller joins, an agent answers, a member is
    paused...): the board goes out at once, then at most once per ``board_min_gap_s`` however
    busy the queues are. Without events it is rebuilt every ``board_interval_s`` so that
    waiting times keep counting up."""
    settings = console.settings
    last = ""
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.board_interval_s):
                await changed.wait()
        changed.clear()
        if not console.hub.subscribers(BOARD_TOPIC):
            last = ""
            continue
        text = board_json(console)
        # "at" changes every second; compare the rest.
        body = text.split(",", 2)[-1]
        if body != last:
            console.hub.publish(BOARD_TOPIC, text)
            last = body
        await asyncio.sleep(settings.board_min_gap_s)


def _ami_action(ch: MemberChange) -> tuple[str, dict[str, str]]:
    if ch.op == "add":
        f = {"Queue": ch.queue, "Interface": ch.interface, "Penalty": str(ch.penalty)}
        if ch.member:
            f["MemberName"] = ch.member
        return "QueueAdd", f
    if ch.op == "remove":
        return "QueueRemove", {"Queue": ch.queue, "Interface": ch.interface}
    if ch.op == "penalty":
        return "QueuePenalty", {"Queue": ch.queue, "Interface": ch.interface,
                                "Penalty": str(ch.penalty)}
    paused = ch.op == "pause"
    f = {"Queue": ch.queue, "Interface": ch.interface, "Paused": "true" if paused else "false"}
    if paused:
        f["Reason"] = ch.reason or "supervisor"
    return "QueuePause", f


async def change_member(request: web.Request) -> web.Response:
    s = session_of(request, Role.SUPERVISOR)
    console = request.app[CONSOLE]
    ch: MemberChange = await _json(request, MemberChange)
    if ch.queue not in {q for _, q in groups(console)}:
        raise web.HTTPBadRequest(text=f"{ch.queue} is not the queue of a configured group")
    if ch.op == "pause" and ch.reason and ch.reason not in (*PAUSE_REASONS, "supervisor"):
        raise web.HTTPBadRequest(text=f"reason must be one of {', '.join(PAUSE_REASONS)}")
    status, result = await apply_member_change(console, f"web:{s.user.name}", ch)
    return web.json_response(result, status=status)


async def apply_member_change(console: Console, actor: str, ch: MemberChange, *,
                              why: str = "") -> tuple[int, dict[str, Any]]:
    """The HTTP status and the answer: 200, 409 when Asterisk refused the change (it does
    not fit the queue: a member already there, or not there), 502 when Asterisk could not
    be asked (the link is down, no reply)."""
    action, fields = _ami_action(ch)
    detail: dict[str, Any] = {"ami": action, **ch.model_dump(exclude={"op"})}
    if why:
        detail["why"] = why
    try:
        await console.service.link.action(action, fields)
    except AmiError as e:
        await console.audit.write(actor, f"member.{ch.op}", ch.interface, detail, ok=False,
                                  error=str(e))
        refused = isinstance(e, AmiActionError)
        return (409 if refused else 502), {
            "ok": False, "error": f"Asterisk {'refused' if refused else 'unreachable for'} "
                                  f"{action}: {e}"}
    # Asterisk confirms with a QueueMember* event: the live state (board and router) follows.
    await console.audit.write(actor, f"member.{ch.op}", ch.interface, detail)
    return 200, {"ok": True, "action": action}


def _policy(console: Console) -> Any:
    policy = console.service.router.policy
    if policy is None:
        raise web.HTTPConflict(text="routing is static: it has no parameters to tune")
    return policy


async def get_params(request: web.Request) -> web.Response:
    session_of(request, Role.SUPERVISOR)
    policy = _policy(request.app[CONSOLE])
    params = policy.params
    schema = type(params).model_json_schema()
    return web.json_response({"strategy": request.app[CONSOLE].service.router.strategy,
                              "params": params.model_dump(), "schema": schema})


async def set_params(request: web.Request) -> web.Response:
    s = session_of(request, Role.SUPERVISOR)
    console = request.app[CONSOLE]
    policy = _policy(console)
    try:
        changes = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="send JSON") from None
    old = policy.params
    try:
        if not isinstance(changes, dict):
            raise TypeError("send an object of parameter names and values")
        # JSON's 1e999 and NaN read as inf and nan: no routing weight can be that.
        for k, v in changes.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{k}: must be a finite number")
        # Strict: "5" is no number and 0 no boolean (lax pydantic would take both).
        new = old.replace(strict=True, **changes)
    except (ValidationError, ValueError, TypeError) as e:
        await console.audit.write(f"web:{s.user.name}", "routing.params", "policy",
                                  {"requested": _jsonable(changes)}, ok=False,
                                  error=_describe(e)[:500])
        raise web.HTTPBadRequest(text=_describe(e)) from None
    # One assignment: the next routing decision sees every new value together.
    policy.params = new
    diff = {k: {"from": v, "to": new.model_dump()[k]} for k, v in old.model_dump().items()
            if new.model_dump()[k] != v}
    await console.audit.write(f"web:{s.user.name}", "routing.params", "policy", diff)
    log.info("routing parameters changed by %s: %s", s.user.name, diff)
    return web.json_response({"params": new.model_dump(), "changed": diff})


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v, allow_nan=False)   # the audit log stays strict JSON (no Infinity)
        return v
    except (TypeError, ValueError):
        return repr(v)[:200]


def _describe(e: Exception) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(map(str, x['loc'])) or 'params'}: {x['msg']}"
                         for x in e.errors())
    return str(e)


async def audit(request: web.Request) -> web.Response:
    session_of(request, Role.SUPERVISOR)
    return web.json_response(request.app[CONSOLE].audit.recent(100))


async def advisor_state(request: web.Request) -> web.Response:
    session_of(request, Role.SUPERVISOR)
    return web.json_response(request.app[CONSOLE].advisor.state())


async def advisor_run(request: web.Request) -> web.Response:
    s = session_of(request, Role.SUPERVISOR)
    console = request.app[CONSOLE]
    started = console.advisor.start(console.service)
    if started:
        await console.audit.write(f"web:{s.user.name}", "advisor.run", "skills", {})
    return web.json_response(console.advisor.state(), status=202 if started else 409)


async def advisor_apply(request: web.Request) -> web.Response:
    s = session_of(request, Role.SUPERVISOR)
    console = request.app[CONSOLE]
    index = (await _json(request, ApplyProposal)).index
    try:
        p = console.advisor.take(index)
    except (IndexError, ValueError) as e:
        raise web.HTTPBadRequest(text=f"no such proposal to apply: {e}") from None
    ch = MemberChange(op="add", queue=p["queue"], interface=p["interface"],
                      member=p["member"], penalty=p["member_penalty"])
    status, result = await apply_member_change(
        console, f"web:{s.user.name}", ch,
        why=f"skill advisor: ASA {p['asa_before_s']}s -> {p['asa_after_s']}s")
    if result["ok"]:
        console.advisor.mark_applied(index)
    return web.json_response({**result, "advisor": console.advisor.state()}, status=status)


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/api/board", board)
    app.router.add_get("/ws/board", board_ws)
    app.router.add_post("/api/admin/member", change_member)
    app.router.add_get("/api/admin/params", get_params)
    app.router.add_post("/api/admin/params", set_params)
    app.router.add_get("/api/admin/audit", audit)
    app.router.add_get("/api/admin/advisor", advisor_state)
    app.router.add_post("/api/admin/advisor/run", advisor_run)
    app.router.add_post("/api/admin/advisor/apply", advisor_apply)
