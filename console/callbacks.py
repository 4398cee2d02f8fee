"""Callbacks owed (回拨) in the console: the list, and what came of a call back.

Operators and supervisors both call citizens back. The list shows the caller's number masked
only: the number to dial comes from the audited reveal (``POST /api/cases/{number}/reveal``),
which an operator may use on a case that owes a callback (``console.operator.reveal``), so
every number dialled back is on the audit log with who and why.

The client sends the unanswered attempts it showed (``attempts``): a callback another operator
settled or tried meanwhile is then a 409 instead of a second result (``cases.callbacks``).
"""

from __future__ import annotations

import logging
from datetime import tzinfo
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cases import Callback, CallbackResult
from cases.callbacks import NOTE_MAX
from cases.text import StoredText
from console.auth import Role
from console.context import CONSOLE
from console.department import MAX_OFFSET, _int_param
from console.operator import _json, case_number
from console.security import session_of
from console.store_errors import store_answers

log = logging.getLogger("hotline.web.callbacks")

PAGE, MAX_PAGE = 100, 500      # callbacks per page: by default, and at most
MAX_ATTEMPTS = 10**6           # beyond any real count; keeps the number a small integer


class Settle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: CallbackResult
    note: StoredText | None = Field(default=None, max_length=NOTE_MAX)
    attempts: int | None = Field(default=None, ge=0, le=MAX_ATTEMPTS)


def callback_json(c: Callback, tz: tzinfo) -> dict[str, Any]:
    # Times in the centre's zone with its offset, as on the department's page: the screen
    # shows the centre's clock whatever the browser's zone.
    return {"number": c.number, "caller": c.caller_masked, "reason": c.reason,
            "due": c.due.astimezone(tz).isoformat(timespec="minutes"), "overdue": c.overdue,
            "topic": c.topic, "queue": c.queue,
            "created_at": c.created_at.astimezone(tz).isoformat(timespec="minutes"),
            "attempts": c.attempts, "state": c.state, "settled_by": c.settled_by}


async def owed(request: web.Request) -> web.Response:
    session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    limit = _int_param(request, "limit", PAGE, 1, MAX_PAGE)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    store = request.app[CONSOLE].service.store
    with store_answers("list the callbacks owed"):
        now = store.now()      # one "now" for the counts and the page's overdue flags
        counts = await store.callback_counts(now)
        found = await store.callbacks_owed(limit=limit + 1, offset=offset, now=now)
    more = len(found) > limit    # one more than the page was asked for: a next page exists
    return web.json_response({
        "owed": counts.owed, "overdue": counts.overdue, "offset": offset,
        "next_offset": offset + limit if more else None,
        "callbacks": [callback_json(c, store.timezone) for c in found[:limit]]})


async def settle(request: web.Request) -> web.Response:
    s = session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    number = case_number(request)
    form: Settle = await _json(request, Settle)
    store = request.app[CONSOLE].service.store
    with store_answers(f"settle the callback of case {number}"):
        done = await store.settle_callback(number, form.result, actor=f"web:{s.user.name}",
                                           note=form.note, seen_attempts=form.attempts)
    log.info("callback of case %s: %s by %s", number, form.result, s.user.name)
    return web.json_response(callback_json(done, store.timezone))


def add_callback_routes(app: web.Application) -> None:
    app.router.add_get("/api/callbacks", owed)
    app.router.add_post("/api/callbacks/{number}", settle)
