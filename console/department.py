"""A department handler's cases: what was dispatched to their department, and the lifecycle
steps that are theirs (sign for it, reply, return it). They never see who called."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cases import CaseView
from cases.lifecycle import OPEN_STATES, Action
from cases.text import StoredText, check_storable
from console.auth import Role
from console.context import CONSOLE
from console.operator import _json, case_number
from console.security import session_of
from console.store_errors import store_answers

DEPARTMENT_ACTIONS = (Action.START, Action.REPLY, Action.RETURN)
PAGE, MAX_PAGE = 100, 500     # cases per page of the list: by default, and at most
MAX_OFFSET = 10**6            # beyond any real backlog; keeps OFFSET a small integer in SQL


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Action
    reason: StoredText | None = Field(default=None, max_length=2000)
    expected_version: int


def _dept(request: web.Request) -> str:
    s = session_of(request, Role.DEPARTMENT, Role.SUPERVISOR)
    dept = s.user.department if s.user.role is Role.DEPARTMENT else request.query.get("code")
    if not dept:
        raise web.HTTPBadRequest(text="no department")
    try:   # the code goes into a query: one the database cannot take is a bad request
        check_storable("code", dept)
    except ValueError as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    return dept


def _view(c: CaseView, tz: tzinfo) -> dict[str, Any]:
    # Times in the centre's time zone, with its offset, as the case numbers and deadlines are
    # meant (a deadline is "by 17:00 on working day N" there); the page shows the local part.
    return {"number": c.number, "version": c.version, "status": str(c.status),
            "case_type": None if c.case_type is None else str(c.case_type), "topic": c.topic,
            "urgency": str(c.urgency), "district": c.district, "address": c.address,
            "description": c.description,
            "deadline": None if c.deadline is None
            else c.deadline.astimezone(tz).isoformat(timespec="minutes"),
            "created_at": c.created_at.astimezone(tz).isoformat(timespec="minutes")}


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # isascii too: str.isdigit() takes "²" or "٣", which int() then refuses (a 500).
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number from {low} to {high}")
    return int(raw)


async def cases(request: web.Request) -> web.Response:
    """One page of the department's open cases, newest first. Filtered by department in SQL:
    filtering a fixed number of the newest open cases of every department would lose a
    department's older cases from sight once the centre has that many open cases."""
    dept = _dept(request)
    limit = _int_param(request, "limit", PAGE, 1, MAX_PAGE)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    store = request.app[CONSOLE].service.store
    with store_answers(f"list the cases of {dept}"):
        found = await store.find_cases(
            statuses=[str(s) for s in OPEN_STATES], departments=[dept], limit=limit + 1,
            offset=offset)
    more = len(found) > limit    # one more than the page was asked for: a next page exists
    return web.json_response({"department": dept, "offset": offset,
                              "next_offset": offset + limit if more else None,
                              "cases": [_view(c, store.timezone) for c in found[:limit]]})


async def step(request: web.Request) -> web.Response:
    dept = _dept(request)
    s = session_of(request)
    number = case_number(request)
    form: Step = await _json(request, Step)
    if form.action not in DEPARTMENT_ACTIONS:
        raise web.HTTPBadRequest(text=f"{form.action} is not a department's step")
    store = request.app[CONSOLE].service.store
    with store_answers(f"{form.action} case {number}"):
        case = await store.get(number)
        if case is None or case.department != dept:
            raise web.HTTPNotFound(text=f"no case {number} at {dept}")
        # expected_version is compared with the row locked: had the case gone to another
        # department since the read above, its version would differ (409).
        case = await store.transition(number, form.action, actor=f"web:{s.user.name}",
                                      reason=form.reason or None,
                                      expected_version=form.expected_version)
    return web.json_response(_view(case, store.timezone))


def add_department_routes(app: web.Application) -> None:
    app.router.add_get("/api/department/cases", cases)
    app.router.add_post("/api/department/cases/{number}", step)
