"""The console's JSON API against its own OpenAPI document, with schemathesis: generated
requests (valid and not), sent with a real logged-in session, never get a server error, and
every response (status, content type, body) matches the document.

The whole console runs as in the other console tests (pbxsim, the service with a real SQLite
case store, the web app), on its own loop in a thread (schemathesis sends synchronously).
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cases import CallStart, Outcome
from cases.lifecycle import Action
from console.openapi_console import PATH, console_document
from console.security import COOKIE
from tests.test_console_fixtures import ConsoleRig, console_rig, login

SEEDS = Path(__file__).parent.parent / "cases" / "seeds" / "departments.example.toml"
DEPARTMENT = "330100-housing"     # the demo department user's


class _Console:
    """pbxsim + service + web console on one loop in a thread; sessions logged in through
    the real form, and a few real cases for the generated requests to reach."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stack = AsyncExitStack()
        self.base = ""
        self.sessions: dict[str, tuple[str, str]] = {}   # user -> (session id, CSRF token)
        self.cases: list[str] = []

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        cr: ConsoleRig = await self._stack.enter_async_context(console_rig(self._tmp))
        self.base = cr.base
        store = cr.rig.service.store
        await store.load_departments(SEEDS)
        node = cr.rig.config.service.node
        for i in range(4):
            case = await store.open_call_case(CallStart(
                node=node, call_id=f"fuzz-{i}", caller_number="13800138000"))
            if i % 2:   # half of them at the department, for its steps
                await store.transition(case.number, Action.DISPATCH, actor="test",
                                       department=DEPARTMENT)
            if i < 2:   # and two abandoned calls, owed a callback (回拨) to settle
                await store.finish_call(node, f"fuzz-{i}", Outcome.ABANDONED,
                                        datetime.now(UTC))
            self.cases.append(case.number)
        for name in ("supervisor", "operator", "department"):
            async with cr.client() as client:
                csrf = await login(client, name, name)
                sid = next(m.value for m in client.cookie_jar if m.key == COOKIE)
            self.sessions[name] = (sid, csrf)

    def stop(self) -> None:
        self.run(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


_SERVER: list[_Console] = []     # what the auth providers and hooks below read


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Console]:
    s = _Console(tmp_path_factory.mktemp("console-schema"))
    s.start()
    _SERVER.append(s)
    yield s
    _SERVER.remove(s)
    s.stop()


schema = schemathesis.openapi.from_dict(console_document())


def _provider(user: str) -> type:
    class Session:
        """The logged-in session's cookie, and its CSRF token for the POSTs. Schemathesis
        asks already while collecting (its coverage cases), before the server runs: those
        get a placeholder that ``_call`` swaps for the real values."""

        def get(self, case: schemathesis.Case[Any], context: Any) -> tuple[str, str]:
            return _SERVER[0].sessions[user] if _SERVER else (f"<{user}>", f"<{user}>")

        def set(self, case: schemathesis.Case[Any], data: tuple[str, str], context: Any) -> None:
            case.cookies[COOKIE], case.headers["X-CSRF-Token"] = data
    Session.__name__ = f"{user.title()}Session"
    return Session


def _call(case: schemathesis.Case[Any], server: _Console, user: str) -> None:
    if case.cookies.get(COOKIE) == f"<{user}>":
        case.cookies[COOKIE], case.headers["X-CSRF-Token"] = server.sessions[user]
    case.call_and_validate(base_url=server.base, excluded_checks=EXCLUDED)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    # Random case numbers only ever get 404: about half the time, a real case instead, so
    # the saves, reveals and lifecycle steps run on real rows with the generated bodies.
    if not path_parameters or "number" not in path_parameters:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.sampled_from(range(4)).map(
        lambda i: {**path_parameters, "number": _SERVER[0].cases[i]}))


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> Any:
    # The supervisor names a department with ?code=: often the one that has cases.
    if context.operation is None or not context.operation.path.startswith("/api/department"):
        return st.just(query)
    return st.one_of(st.just(query), st.just({**(query or {}), "code": DEPARTMENT}))


# Every check but one. "A schema-valid request is accepted" cannot hold: the document
# cannot say which cases exist, which state a case is in (a step the lifecycle does not
# allow is a 400/409), whether the session signed in as a queue member (pause: 409), which
# queues are configured (member changes: 400) or what Asterisk will refuse (409).
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


def _settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, suppress_health_check=[
        HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])


@schema.parametrize()
@schema.auth.apply(_provider("supervisor"), refresh_interval=None)
@_settings(25)
def test_console_api_matches_its_document(case: schemathesis.Case[Any], server: _Console) -> None:
    # The supervisor may call every operation (an operator's and a department's too).
    _call(case, server, "supervisor")


@schema.parametrize()
@schema.auth.apply(_provider("operator"), refresh_interval=None)
@_settings(6)
def test_as_an_operator(case: schemathesis.Case[Any], server: _Console) -> None:
    # Refused admin and department operations (403) match the document too.
    _call(case, server, "operator")


@schema.parametrize()
@schema.auth.apply(_provider("department"), refresh_interval=None)
@_settings(6)
def test_as_a_department(case: schemathesis.Case[Any], server: _Console) -> None:
    _call(case, server, "department")


def test_the_document_is_served_without_login(server: _Console) -> None:
    with urllib.request.urlopen(f"{server.base}{PATH}") as r:
        served = json.load(r)
    assert served["paths"].keys() == console_document()["paths"].keys()
    assert served == json.loads(json.dumps(console_document()))


def _post(server: _Console, path: str, body: bytes) -> tuple[int, Any]:
    sid, csrf = server.sessions["supervisor"]
    req = urllib.request.Request(f"{server.base}{path}", data=body, method="POST", headers={
        "Cookie": f"{COOKIE}={sid}", "X-CSRF-Token": csrf,
        "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.mark.parametrize(("path", "body"), [
    # What schemathesis found (500s before): no body, or not an object.
    ("/api/cases/{case}/reveal", b""), ("/api/cases/{case}/reveal", b"[]"),
    ("/api/admin/advisor/apply", b""), ("/api/admin/advisor/apply", b'"x"'),
    # Found by reading around them: an index of 1e999 (int(inf) raised), and non-finite
    # routing weights (accepted, then served as invalid JSON: Infinity).
    ("/api/admin/advisor/apply", b'{"index": 1e999}'),
    ("/api/admin/params", b'{"margin_s": 1e999}'), ("/api/admin/params", b'{"margin_s": NaN}'),
    # Lax coercions: a string is no number, 0 no boolean.
    ("/api/admin/params", b'{"margin_s": "5"}'), ("/api/admin/params", b'{"look_ahead": 0}'),
    ("/api/cases/{case}", b'{"expected_version": "1"}'),
    ("/api/callbacks/{case}", b""),
    ("/api/callbacks/{case}", b'{"result": "reached", "attempts": 1e999}'),
])
def test_bad_bodies_are_400_with_a_json_message(server: _Console, path: str,
                                                 body: bytes) -> None:
    status, answer = _post(server, path.format(case=server.cases[0]), body)
    assert status == 400 and isinstance(answer["error"], str), (status, answer)


def test_api_errors_are_json(server: _Console) -> None:
    # Without a session, and on an unknown API path: the document's error shape.
    for path in ("/api/me", "/api/nope"):
        try:
            urllib.request.urlopen(f"{server.base}{path}")
        except urllib.error.HTTPError as e:
            assert e.headers["Content-Type"].startswith("application/json")
            assert isinstance(json.load(e)["error"], str)
        else:
            raise AssertionError(f"{path} answered without a session")
