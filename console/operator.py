"""The operator's API: sign in as a queue member, the screen-pop websocket, saving the case,
revealing the caller's number (audited by the store), pause with a reason and resume.

An operator may edit only the cases that were popped on their screen (the last
``RECENT_CASES``); a supervisor may edit any. An operator may also reveal the number of a case
that owes a callback (回拨, ``console.callbacks``): calling back is their work too.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cases import CaseType, Urgency
from cases.callbacks import OPEN
from cases.lifecycle import Action
from cases.text import StoredText
from console.auth import Role, Session
from console.context import CONSOLE, Console
from console.screenpop import agent_topic, case_json
from console.security import require_origin, session_of
from console.store_errors import store_answers
from ivr.ami.errors import AmiActionError, AmiError
from ivr.node import AsteriskNode

log = logging.getLogger("hotline.web.operator")

_CASE_NUMBER = re.compile(r"[0-9]{14}")
PAUSE_REASONS = ("wrap-up", "break", "lunch", "training", "meeting", "callback")
# What an operator may do to the case's lifecycle from the call: close it on the spot
# (answered during the call, 直接办结) or hand it over to a department.
FORM_ACTIONS = (Action.CLOSE, Action.DISPATCH, Action.TRANSFER)
# The case's fields on the operator's form.
FORM_FIELDS = ("case_type", "topic", "urgency", "district", "description")


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@/-]+$")
    interface: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9_.@/:-]*$")


class CaseForm(BaseModel):
    # StoredText: what the database cannot store (a NUL character) is a 400 naming the field.
    model_config = ConfigDict(extra="forbid")
    case_type: CaseType | None = None
    topic: StoredText | None = Field(default=None, max_length=64)
    urgency: Urgency | None = None
    district: StoredText | None = Field(default=None, max_length=64)
    description: StoredText | None = Field(default=None, max_length=4000)
    action: Action | None = None
    department: StoredText | None = Field(default=None, max_length=64)
    reason: StoredText | None = Field(default=None, max_length=500)
    expected_version: int | None = None
    # The value each changed field had when the form was filled: a field someone else
    # changed since is a 409 naming it, not silently overwritten (CaseStore.edit_case).
    base: dict[str, StoredText | None] | None = Field(default=None, max_length=len(FORM_FIELDS))

    @field_validator("base")
    @classmethod
    def _base_fields(cls, v: dict[str, str | None] | None) -> dict[str, str | None] | None:
        unknown = sorted(set(v or {}) - set(FORM_FIELDS))
        if unknown:
            raise ValueError(f"base: not a field of the form: {', '.join(unknown)}")
        return v


class RevealForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: StoredText


class PauseForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paused: bool
    reason: str = Field(default="", max_length=64)


async def _json(request: web.Request, model: type[BaseModel]) -> Any:
    # Strict: a JSON API takes JSON types as they are ("0" is no integer, 0 no boolean);
    # a missing, empty or malformed body is a 400 like any other bad field.
    try:
        return model.model_validate_json(await request.read(), strict=True)
    except (ValidationError, ValueError) as e:
        raise web.HTTPBadRequest(text=_problem(e)) from None


def _problem(e: Exception) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}"
                         for x in e.errors())
    return str(e)


def case_number(request: web.Request) -> str:
    """The ``{number}`` of the path, if it can be a case number (YYYYMMDD + 6 digits): a
    malformed one names no case (404) and never reaches the database, which may refuse it
    (PostgreSQL refuses a NUL character) rather than merely find nothing."""
    number = request.match_info["number"]
    if not _CASE_NUMBER.fullmatch(number):
        raise web.HTTPNotFound(text=f"no case {number!r}")
    return number


def _member(s: Session) -> str:
    if not s.member:
        raise web.HTTPConflict(text="sign in with your queue member name first")
    return s.member


async def sign_in(request: web.Request) -> web.Response:
    s = session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    form: SignIn = await _json(request, SignIn)
    if s.user.member and form.member != s.user.member:
        raise web.HTTPForbidden(text=f"{s.user.name} answers as {s.user.member} only")
    # A member bound to a login is that person's: answering as them would show their screen
    # pops (callers' details) and let one reveal numbers in their name.
    owner = request.app[CONSOLE].users.owner_of(form.member)
    if owner is not None and owner.name != s.user.name:
        raise web.HTTPForbidden(text=f"{form.member} belongs to another login")
    console = request.app[CONSOLE]
    node = _node_of(console, form.member)
    # The interface pause and resume act on (QueuePause pauses an interface in every queue):
    # the member's own as Asterisk lists it, never one the form names for someone else.
    live = _interface_in(node, form.member)
    wanted = form.interface or s.user.interface
    if live is None and wanted:
        holder = _member_with_interface(console, wanted)
        if holder is not None and holder != form.member:
            raise web.HTTPForbidden(text=f"{wanted} is {holder}'s interface")
    s.member = form.member
    s.interface = live or wanted
    return web.json_response({"member": s.member, "interface": s.interface})


def _member_with_interface(console: Console, interface: str) -> str | None:
    """The queue member using ``interface`` on any Asterisk node (None: nobody)."""
    for node in console.service.nodes:
        for ms in node.live.members.values():
            for m in ms.values():
                if m.interface.lower() == interface.lower():
                    return m.name
    return None


def _node_of(console: Console, member: str) -> AsteriskNode | None:
    """The one Asterisk on which ``member`` is in a queue (None: in no queue yet)."""
    nodes = console.pops.nodes_of(member)
    if len(nodes) > 1:
        raise web.HTTPConflict(text=f"{member} is a queue member on several Asterisk nodes "
                                    f"({', '.join(n.name for n in nodes)}); member names "
                                    "must be unique across nodes")
    return nodes[0] if nodes else None


def _interface_in(node: AsteriskNode | None, member: str) -> str | None:
    for ms in node.live.members.values() if node is not None else ():
        m = ms.get(member)
        if m is not None:
            return m.interface
    return None


async def operator_ws(request: web.Request) -> web.WebSocketResponse:
    s = session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    require_origin(request)
    member = _member(s)
    console = request.app[CONSOLE]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    hello = [json.dumps({"type": "hello", "member": member, "interface": s.interface})]
    hello.append(console.pops.agent_state_json(member))
    pop = console.pops.current.get(member)
    if pop is not None:    # a reload mid-call shows the call again
        hello.append(json.dumps(pop.render(s.user.role), ensure_ascii=False))
        if pop.detail is not None:
            hello.append(json.dumps(pop.detail, ensure_ascii=False, default=str))
    await console.hub.serve(request, ws, role=s.user.role, user=s.user.name,
                            topics=[agent_topic(member)], hello=hello, sid=s.sid)
    return ws


async def state(request: web.Request) -> web.Response:
    s = session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    console = request.app[CONSOLE]
    pop = console.pops.current.get(s.member or "")
    return web.json_response({
        "user": s.user.name, "role": str(s.user.role), "member": s.member,
        "interface": s.interface, "pause_reasons": list(PAUSE_REASONS),
        "pop": None if pop is None else pop.render(s.user.role),
        "detail": None if pop is None else pop.detail,
        "agent": console.pops.agent_state(s.member) if s.member else None,
    }, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


async def departments(request: web.Request) -> web.Response:
    session_of(request)
    with store_answers("list the departments"):
        deps = await request.app[CONSOLE].pops.departments()
    return web.json_response([{"code": d.code, "name": d.name, "kind": str(d.kind)}
                              for d in deps])


def _may_edit(request: web.Request, s: Session, number: str) -> None:
    if s.user.role is Role.SUPERVISOR:
        return
    if not request.app[CONSOLE].pops.may_edit(s.member, number):
        raise web.HTTPForbidden(text=f"case {number} was not on your screen")


async def save_case(request: web.Request) -> web.Response:
    s = session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    number = case_number(request)
    _may_edit(request, s, number)
    form: CaseForm = await _json(request, CaseForm)
    store = request.app[CONSOLE].service.store
    actor = f"web:{s.user.name}"
    changes = form.model_dump(include=set(FORM_FIELDS), exclude_none=True)
    if form.action is not None and form.action not in FORM_ACTIONS:
        raise web.HTTPBadRequest(text=f"{form.action} is not done from a call")
    expected = form.expected_version
    with store_answers(f"save case {number}"):
        if changes or form.action is not None:
            # One transaction, the version compared with the row locked: two saves of one
            # version cannot both pass, and an action the lifecycle refuses (400) takes the
            # field changes back with it.
            case = await store.edit_case(number, changes, actor=actor,
                                         expected_version=expected, base=form.base,
                                         action=form.action,
                                         reason=form.reason or None,
                                         department=form.department or None)
        else:     # nothing to write: the case as it is, if still current
            found = await store.get(number)
            if found is None:
                raise web.HTTPNotFound(text=f"no case {number}")
            if expected is not None and found.version != expected:
                raise web.HTTPConflict(text=f"case {number} changed meanwhile (version "
                                            f"{found.version}); reload it")
            case = found
    log.info("case %s saved by %s (%s%s)", number, s.user.name, sorted(changes),
             f", {form.action}" if form.action else "")
    return web.json_response(case_json(case))


async def reveal(request: web.Request) -> web.Response:
    s = session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    number = case_number(request)
    store = request.app[CONSOLE].service.store
    if s.user.role is not Role.SUPERVISOR and not request.app[CONSOLE].pops.may_edit(
            s.member, number):
        # A caller owed a call back (回拨) was mostly on nobody's screen (they hung up while
        # waiting): the operator calling them back needs the number, audited like any reveal.
        with store_answers(f"look up the callback of case {number}"):
            owed = await store.callback(number)
        if owed is None or owed.state != OPEN:
            raise web.HTTPForbidden(text=f"case {number} was not on your screen and owes "
                                         "no callback")
    form: RevealForm = await _json(request, RevealForm)
    reason = form.reason.strip()[:200]
    if not reason:
        raise web.HTTPBadRequest(text="a reason is required: unmasking is audited")
    with store_answers(f"reveal the caller of case {number}"):
        plain = await store.reveal_number(number, actor=f"web:{s.user.name}", reason=reason)
    return web.json_response({"number": plain})


async def pause(request: web.Request) -> web.Response:
    s = session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    member = _member(s)
    form: PauseForm = await _json(request, PauseForm)
    if form.paused and form.reason not in PAUSE_REASONS:
        raise web.HTTPBadRequest(text=f"reason must be one of {', '.join(PAUSE_REASONS)}")
    if not s.interface:
        raise web.HTTPConflict(text=f"{member} is in no queue: nothing to pause")
    console = request.app[CONSOLE]
    fields = {"Interface": s.interface, "Paused": "true" if form.paused else "false"}
    if form.paused:
        fields["Reason"] = form.reason
    try:
        # On the Asterisk where this member is (the first, if in no queue yet).
        node = _node_of(console, member) or console.service.nodes[0]
        await node.link.action("QueuePause", fields)
    except AmiActionError as e:
        # Asterisk answered: the request does not fit its state (e.g. not in any queue).
        raise web.HTTPConflict(text=f"Asterisk refused: {e}") from None
    except AmiError as e:
        raise web.HTTPBadGateway(text=f"Asterisk unreachable: {e}") from None
    if not form.paused:
        pop = console.pops.current.get(member)
        if pop is not None and pop.phase in ("wrapup", "missed"):
            console.pops.clear(member)    # ready for the next call
    await console.audit.write(f"web:{s.user.name}", "pause" if form.paused else "resume",
                              member, {"interface": s.interface, "reason": form.reason})
    return web.json_response({"member": member, "paused": form.paused, "reason": form.reason})


def add_operator_routes(app: web.Application) -> None:
    app.router.add_post("/api/operator/signin", sign_in)
    app.router.add_get("/api/operator/state", state)
    app.router.add_get("/ws/operator", operator_ws)
    app.router.add_post("/api/operator/pause", pause)
    app.router.add_get("/api/departments", departments)
    app.router.add_post("/api/cases/{number}", save_case)
    app.router.add_post("/api/cases/{number}/reveal", reveal)
