"""The OpenAPI 3.0 document of the console's JSON API (the session-authenticated one the
operator, admin and department pages call), served at ``/api/openapi.json`` so that scripts
can be written against it and tests can check the API against it (schemathesis).

Websockets, the HTML pages, the login form and ``/metrics`` are not in it: they are not a
JSON request/response API. Every error of the API is ``{"error": message}`` (``app.py``
turns aiohttp's errors under ``/api/`` into that shape).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cases import CallbackResult, CaseType, Urgency
from cases.callbacks import NOTE_MAX, OPEN
from cases.departments import DepartmentKind
from console.auth import Role
from console.callbacks import MAX_ATTEMPTS, MAX_PAGE, PAGE
from console.operator import PAUSE_REASONS
from console.security import COOKIE
from routing.policy import MAX_PRIORITY, MAX_SECONDS, MAX_SKILL

JsonObject = dict[str, Any]

PATH = "/api/openapi.json"

_STR: JsonObject = {"type": "string"}
_INT: JsonObject = {"type": "integer"}
_NUM: JsonObject = {"type": "number"}
_BOOL: JsonObject = {"type": "boolean"}
_OBJ: JsonObject = {"type": "object"}
_N_STR: JsonObject = {"type": "string", "nullable": True}
_N_NUM: JsonObject = {"type": "number", "nullable": True}
_N_OBJ: JsonObject = {"type": "object", "nullable": True}
_NAME = r"^[A-Za-z0-9_.@/:-]+$"


def _ref(name: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: JsonObject) -> JsonObject:
    # OpenAPI 3.0 wants no ``required`` at all rather than an empty one.
    return {"type": "object", **({"required": required} if required else {}),
            "properties": props}


def _n_enum(values: list[str]) -> JsonObject:
    # Nullable and an enum: null must be one of the values too (OpenAPI 3.0.3).
    return {"type": "string", "enum": [*values, None], "nullable": True}


def _form(required: list[str], **props: JsonObject) -> JsonObject:
    # Request bodies: the handlers' pydantic models forbid unknown fields.
    return {**_obj(required, **props), "additionalProperties": False}


_CASE = _obj(
    ["number", "version", "status", "urgency", "created_at"],
    number=_STR, version=_INT,
    # Lenient in the store (rows written by older versions keep their value): any string.
    status=_STR, case_type=_N_STR, urgency=_STR,
    topic=_N_STR, topic_confidence=_N_NUM, district=_N_STR, description=_N_STR,
    transcript=_N_STR, department=_N_STR, ivr_path={"type": "array", "items": {}},
    queue=_N_STR, agent=_N_STR, wait_s=_N_NUM, created_at=_STR, related_to=_N_STR,
    repeat_count=_INT)
_DEPT_CASE = _obj(
    ["number", "version", "status", "urgency", "created_at"],
    number=_STR, version=_INT, status=_STR, case_type=_N_STR, topic=_N_STR, urgency=_STR,
    district=_N_STR, address=_N_STR, description=_N_STR, deadline=_N_STR, created_at=_STR)
_MEMBER_STATES = ["available", "on_call", "wrap_up", "paused", "unavailable"]
_MEMBER_VIEW = _obj(["name", "interface", "penalty", "paused", "busy", "state"],
                    name=_STR, interface=_STR, penalty=_INT, paused=_BOOL, busy=_BOOL,
                    state={"type": "string", "enum": _MEMBER_STATES}, reason=_STR)
_GROUP = _obj(
    ["group", "queue", "waiting", "agents", "members", "series"],
    group=_STR, queue=_STR, waiting=_INT, longest_wait_s=_NUM,
    agents=_obj([*_MEMBER_STATES, "total"], total=_INT,
                **{state: _INT for state in _MEMBER_STATES}),
    members={"type": "array", "items": _MEMBER_VIEW},
    offered=_INT, answered=_INT, abandoned=_INT, asa_s=_N_NUM, service_level=_N_NUM,
    # Waits app_queue ended at the Queue() timeout, the caller then offered another queue.
    timed_out=_INT,
    abandon_rate=_N_NUM,
    series={"type": "array", "items": _obj(
        ["t", "calls"], t=_STR, calls=_INT, answered=_INT, abandoned=_INT,
        mean_wait_s=_N_NUM)})
_PROPOSAL = _obj(["index", "queue", "applied"], index=_INT, skills_before=_STR,
                 queue=_STR, proficiency=_INT, member_penalty=_INT, asa_before_s=_N_NUM,
                 asa_after_s=_N_NUM, delta_se_s=_N_NUM, member=_N_STR, interface=_N_STR,
                 applied=_BOOL)
_ADVISOR = _obj(["running", "error", "computed_at", "proposals", "summary"],
                running=_BOOL, error=_N_STR, computed_at=_N_NUM,
                proposals={"type": "array", "items": _ref("Proposal")}, summary=_N_OBJ)
# The routing policy's tunables (``routing.policy.PolicyParams``); a POST names some of them.
_PARAMS: dict[str, JsonObject] = {
    "margin_s": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
    "proficiency_cost_s": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
    "max_skill_penalty": {"type": "integer", "minimum": 0, "maximum": MAX_SKILL},
    "specialists_first": _BOOL, "park_helpers": _BOOL, "look_ahead": _BOOL,
    **{k: {"type": "integer", "minimum": 0, "maximum": MAX_PRIORITY} for k in (
        "priority_emergency", "priority_flagged", "priority_repeat", "priority_enterprise")}}

_CALLBACK = _obj(
    ["number", "caller", "reason", "due", "overdue", "topic", "queue", "created_at",
     "attempts", "state", "settled_by"],
    number=_STR, caller={"type": "string", "description": "masked; empty when withheld"},
    reason={"type": "string", "description": "the call's outcome: abandoned, or callback "
                                             "(the queue's key, an after-hours message)"},
    due={"type": "string", "description": "the centre's local time, with its offset"},
    overdue=_BOOL, topic=_N_STR, queue=_N_STR, created_at=_STR,
    attempts={"type": "integer", "description": "unanswered calls back so far"},
    state={"type": "string", "enum": [OPEN, CallbackResult.REACHED.value,
                                      CallbackResult.GIVEN_UP.value]},
    settled_by=_N_STR)

SCHEMAS: dict[str, JsonObject] = {
    "Error": {**_obj(["error"], error=_STR), "description": "every error of the API"},
    "Case": _CASE,
    "DepartmentCase": _DEPT_CASE,
    "Group": _GROUP,
    "Proposal": _PROPOSAL,
    "Advisor": _ADVISOR,
    "Callback": _CALLBACK,
}

_WHY = {400: "bad input (the message says which field and why)",
        401: "no session: log in at /login first",
        403: "the session's role may not do this, or (POST) a missing or wrong X-CSRF-Token "
             "or a foreign Origin",
        404: "no such case (or not at this department, or owing no callback)",
        409: "the state does not allow it (see the message: e.g. a callback settled "
             "meanwhile), or Asterisk refused the action",
        502: "Asterisk could not be asked (the AMI link is down or did not answer)",
        503: "the case store is unavailable; try again"}


def _error(code: int) -> JsonObject:
    return {"description": _WHY[code],
            "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(schema: JsonObject, what: str = "OK") -> JsonObject:
    return {"description": what, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: JsonObject, *errors: int, status: int = 200,
        body: JsonObject | None = None, params: list[JsonObject] | None = None,
        extra: dict[int, JsonObject] | None = None, post: bool = False) -> JsonObject:
    post = post or body is not None
    responses = {str(status): ok, **{str(c): r for c, r in (extra or {}).items()},
                 **{str(c): _error(c) for c in sorted({401, 403, *errors})}}
    op: JsonObject = {"summary": summary, "responses": responses,
                      # Every state-changing request carries the session's CSRF token too.
                      "security": [{"session": [], "csrf": []} if post else {"session": []}]}
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


_NUMBER = {"name": "number", "in": "path", "required": True, "schema": _STR,
           "description": "the case number"}
_CODE = {"name": "code", "in": "query", "required": False, "schema": _STR,
         "description": "the department's code: supervisors only (a department handler "
                        "always sees their own)"}


def _operator_paths() -> dict[str, JsonObject]:
    member_pattern = r"^[A-Za-z0-9_.@/-]+$"
    return {
        "/api/operator/signin": {"post": _op(
            "Answer as a queue member (operators locked to one member may only name it)",
            _ok(_obj(["member", "interface"], member=_STR, interface=_N_STR)), 400,
            body=_form(["member"],
                       member={"type": "string", "minLength": 1, "maxLength": 64,
                               "pattern": member_pattern},
                       interface={"type": "string", "maxLength": 128,
                                  "pattern": r"^[A-Za-z0-9_.@/:-]*$"}))},
        "/api/operator/state": {"get": _op(
            "The operator screen's state: who, the pop on screen, the agent's queues",
            _ok(_obj(["user", "role", "member", "interface", "pause_reasons", "pop",
                      "detail", "agent"],
                     user=_STR, role=_STR, member=_N_STR, interface=_N_STR,
                     pause_reasons={"type": "array", "items": _STR},
                     pop=_N_OBJ, detail=_N_OBJ, agent=_N_OBJ)))},
        "/api/operator/pause": {"post": _op(
            "Pause (with a reason) or resume the signed-in member in all their queues",
            _ok(_obj(["member", "paused", "reason"], member=_STR, paused=_BOOL,
                     reason=_STR)), 400, 409, 502,
            body=_form(["paused"], paused=_BOOL,
                       reason={"type": "string", "maxLength": 64,
                               "description": "required when pausing: one of "
                                              + ", ".join(PAUSE_REASONS)}))},
        "/api/departments": {"get": _op(
            "Active departments (for dispatching a case)",
            _ok({"type": "array", "items": _obj(
                ["code", "name", "kind"], code=_STR, name=_STR,
                kind={"type": "string", "description": "one of "
                      + ", ".join(k.value for k in DepartmentKind) + " (or older)"})}),
            503)},
        "/api/cases/{number}": {"post": _op(
            "Save a case popped on the operator's screen (any case for a supervisor); "
            "optionally close, dispatch or transfer it",
            _ok(_ref("Case")), 400, 404, 409, 503, params=[_NUMBER],
            body=_form(
                [], case_type=_n_enum([c.value for c in CaseType]),
                topic={**_N_STR, "maxLength": 64},
                urgency=_n_enum([u.value for u in Urgency]),
                district={**_N_STR, "maxLength": 64},
                description={**_N_STR, "maxLength": 4000},
                action=_n_enum(["close", "dispatch", "transfer"]),
                department={**_N_STR, "maxLength": 64,
                            "description": "for dispatch and transfer"},
                reason={**_N_STR, "maxLength": 500},
                expected_version={"type": "integer", "nullable": True,
                                  "description": "refuse (409) if the case changed since"},
                base={"type": "object", "nullable": True,
                      "additionalProperties": _N_STR,
                      "description": "the value each changed field had when the form was "
                      "filled (keys: the five fields above); refuse (409, naming it) a "
                      "field someone else changed since, where expected_version would "
                      "also refuse changes to other fields"}))},
        "/api/cases/{number}/reveal": {"post": _op(
            "The caller's full number (null when withheld); audited with the reason. An "
            "operator: of a case popped on their screen, or owing a callback",
            _ok(_obj(["number"], number=_N_STR)), 400, 404, 503, params=[_NUMBER],
            body=_form(["reason"], reason={
                "type": "string", "pattern": r"\S",
                "description": "why; kept (its first 200 characters) in the audit log"}))},
    }


def _admin_paths() -> dict[str, JsonObject]:
    board = _obj(["type", "at", "service_level_s", "groups"],
                 type={"type": "string", "enum": ["board"]}, at=_STR, service_level_s=_NUM,
                 groups={"type": "array", "items": _ref("Group")})
    def refused(what: str, **more: JsonObject) -> JsonObject:
        return _ok(_obj(["ok", "error"], ok={"type": "boolean", "enum": [False]}, error=_STR,
                        **more), what + " (audited)")

    def not_done(**more: JsonObject) -> dict[int, JsonObject]:
        return {409: refused("Asterisk refused the change (e.g. the member is already "
                             "there, or not there)", **more),
                502: refused("Asterisk could not be asked", **more)}

    def applied(**more: JsonObject) -> JsonObject:
        return _obj(["ok", "action"], ok={"type": "boolean", "enum": [True]}, action=_STR,
                    **more)
    return {
        "/api/board": {"get": _op("The live board: per group, callers waiting, agents and "
                                  "today's figures", _ok(board))},
        "/api/admin/member": {"post": _op(
            "Add, remove, re-penalise, pause or resume a queue member (over AMI; audited)",
            _ok(applied()), 400, body=_form(
                ["op", "queue", "interface"],
                op={"type": "string", "enum": ["add", "remove", "penalty", "pause", "resume"]},
                queue={"type": "string", "minLength": 1, "maxLength": 64, "pattern": _NAME,
                       "description": "the queue of a configured routing group",
                       "example": "water"},
                interface={"type": "string", "minLength": 1, "maxLength": 128,
                           "pattern": _NAME, "example": "Local/1001@agents/n"},
                member={"type": "string", "maxLength": 64,
                        "pattern": r"^[A-Za-z0-9_.@/:-]*$", "example": "agent1001"},
                penalty={"type": "integer", "minimum": 0, "maximum": 10000},
                reason={"type": "string", "maxLength": 64,
                        "description": "pause only: one of " + ", ".join(PAUSE_REASONS)
                                       + " or supervisor"}),
            extra=not_done())},
        "/api/admin/params": {
            "get": _op("The routing policy's parameters, with their JSON schema",
                       _ok(_obj(["strategy", "params", "schema"], strategy=_STR,
                                params=_obj(list(_PARAMS), **_PARAMS), schema=_OBJ)), 409),
            "post": _op("Change some routing parameters at once (validated; audited)",
                        _ok(_obj(["params", "changed"], params=_obj(list(_PARAMS), **_PARAMS),
                                 changed={"type": "object", "additionalProperties": _obj(
                                     ["from", "to"], **{"from": {}, "to": {}})})),
                        400, 409, body={"type": "object", "properties": _PARAMS,
                                        "additionalProperties": False})},
        "/api/admin/audit": {"get": _op("The last 100 admin changes, newest first", _ok({
            "type": "array", "items": _obj(
                ["at", "actor", "action", "target", "detail", "ok", "error"],
                at=_STR, actor=_STR, action=_STR, target=_STR, detail=_OBJ, ok=_BOOL,
                error=_N_STR)}))},
        "/api/admin/advisor": {"get": _op("The skill advisor's state and proposals",
                                          _ok(_ref("Advisor")))},
        "/api/admin/advisor/run": {"post": _op(
            "Start the skill advisor (in the background)", _ok(_ref("Advisor"), "started"),
            status=202, extra={409: _ok(_ref("Advisor"), "already running")}, post=True)},
        "/api/admin/advisor/apply": {"post": _op(
            "Apply one proposal of the advisor (a QueueAdd; audited)",
            _ok(applied(advisor=_ref("Advisor"))), 400,
            body=_form(["index"], index={"type": "integer", "minimum": 0}),
            extra=not_done(advisor=_ref("Advisor")))},
    }


def _department_paths() -> dict[str, JsonObject]:
    return {
        "/api/department/cases": {"get": _op(
            "One page of the open cases dispatched to the department, newest first",
            _ok(_obj(
                ["department", "offset", "next_offset", "cases"], department=_STR,
                offset=_INT,
                next_offset={"type": "integer", "nullable": True,
                             "description": "the offset of the next page (null: none)"},
                cases={"type": "array", "items": _ref("DepartmentCase")})),
            400, 503, params=[_CODE, {
                "name": "limit", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                "description": "cases per page"}, {
                "name": "offset", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 0, "maximum": 1000000,
                           "default": 0},
                "description": "cases to skip (the previous page's next_offset)"}])},
        "/api/department/cases/{number}": {"post": _op(
            "A department's step on a case: start (sign for it), reply or return it",
            _ok(_ref("DepartmentCase")), 400, 404, 409, 503, params=[_NUMBER, _CODE],
            body=_form(["action", "expected_version"],
                       action={"type": "string", "enum": ["start", "reply", "return"]},
                       reason={**_N_STR, "maxLength": 2000},
                       expected_version=_INT))},
    }


def _paging(what: str, default: int, most: int) -> list[JsonObject]:
    return [{"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": most, "default": default},
             "description": f"{what} per page"},
            {"name": "offset", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0},
             "description": f"{what} to skip (the previous page's next_offset)"}]


def _callback_paths() -> dict[str, JsonObject]:
    return {
        "/api/callbacks": {"get": _op(
            "The callbacks owed (回拨), the one due first first, a page at a time; with how "
            "many are owed and overdue in all",
            _ok(_obj(["owed", "overdue", "offset", "next_offset", "callbacks"],
                     owed=_INT, overdue=_INT, offset=_INT,
                     next_offset={"type": "integer", "nullable": True,
                                  "description": "the offset of the next page (null: none)"},
                     callbacks={"type": "array", "items": _ref("Callback")})),
            400, 503, params=_paging("callbacks", PAGE, MAX_PAGE))},
        "/api/callbacks/{number}": {"post": _op(
            "What calling the citizen back came to: reached or given_up settles the callback, "
            "no_answer records an attempt and makes it due again later (on the case's "
            "timeline, with the user). The number to dial: POST "
            "/api/cases/{number}/reveal (audited)",
            _ok(_ref("Callback"), "the callback as it now is"), 400, 404, 409, 503,
            params=[_NUMBER],
            body=_form(["result"],
                       result={"type": "string",
                               "enum": [r.value for r in CallbackResult]},
                       note={**_N_STR, "maxLength": NOTE_MAX},
                       attempts={"type": "integer", "nullable": True, "minimum": 0,
                                 "maximum": MAX_ATTEMPTS,
                                 "description": "the unanswered attempts the client showed: "
                                                "refused (409) if the callback changed "
                                                "since"}))},
    }


def console_document() -> JsonObject:
    health = _obj(["ami", "calls_in_progress"], ami=_STR, calls_in_progress=_INT)
    call = _obj(["uniqueid", "channel", "case", "topic", "queue", "agent", "ivr_path"],
                uniqueid=_STR, channel=_STR, case=_N_STR, topic=_N_STR, queue=_N_STR,
                agent=_N_STR, ivr_path={"type": "array", "items": _STR})
    me = _obj(["user", "role", "display_name", "member", "department"], user=_STR,
              role={"type": "string", "enum": [r.value for r in Role]}, display_name=_STR,
              member=_N_STR, department=_N_STR)
    return {
        "openapi": "3.0.3",
        "info": {"title": "hotline console API", "version": "1", "description": (
            "The JSON API of the web console. Log in through the form at /login: the "
            f"session is the `{COOKIE}` cookie (HttpOnly, SameSite=Strict). Every POST "
            "also needs the session's CSRF token in `X-CSRF-Token` (the pages carry it in "
            "`<meta name=\"csrf-token\">`) and, if it sends one, an Origin of this host. "
            "Errors are `{\"error\": message}`.")},
        "paths": {
            "/healthz": {"get": {
                "summary": "Liveness: is the AMI link up", "security": [],
                "responses": {"200": _ok(health, "the AMI link is up"),
                              "503": _ok(health, "the AMI link is down")}}},
            PATH: {"get": {"summary": "This document", "security": [],
                           "responses": {"200": _ok(_OBJ)}}},
            "/api/calls": {"get": _op("Calls in progress", _ok({"type": "array",
                                                                "items": call}))},
            "/api/me": {"get": _op("Who is logged in", _ok(me))},
            **_operator_paths(), **_admin_paths(), **_department_paths(),
            **_callback_paths(),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                            "description": "set by POST /login (the HTML form)"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                         "description": "the session's CSRF token; POST requests only"},
            },
        },
    }


def add_console_openapi_route(app: web.Application) -> None:
    # Readable without a session, like /healthz: it tells how to use the API, nothing of
    # its data (a client must know how to log in before it has a session).
    document = console_document()

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(document)
    app.router.add_get(PATH, serve)
