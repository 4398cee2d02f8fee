"""Callbacks owed (回拨) in the console: an abandoned caller through pbxsim appears on the list,
is called back (the number through the audited reveal) and settled; the API's roles, its
answers to bad input and to two operators settling one callback, on SQLite and PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from cases import CaseStore, EventKind, Outcome
from tests.cases_fixtures import (  # noqa: F401
    SECRET,
    Backend,
    TcpProxy,
    _drop_schema,
    backend,
    call_start,
    pg_proxy,
    pg_url,
)
from tests.test_console_fixtures import WebRig, caller, console_rig, headers, login, web_rig


async def post(client: aiohttp.ClientSession, path: str, body: Any,
               csrf: str) -> tuple[int, Any]:
    async with client.post(path, json=body, headers=headers(csrf)) as r:
        return r.status, await r.json()


async def get(client: aiohttp.ClientSession, path: str, **params: str) -> tuple[int, Any]:
    async with client.get(path, params=params) as r:
        return r.status, await r.json()


async def test_an_abandoned_caller_is_called_back_through_the_console(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as cr:
        # Nobody answers the energy queue: the caller gives up waiting.
        call = await cr.rig.sim.place_call(caller("2", patience_s=5.0))
        outcome = await asyncio.wait_for(call.done, 40)
        await cr.rig.settle()
        assert outcome.abandoned
        store = cr.rig.service.store
        case = await store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None
        async with cr.client() as op:
            csrf = await login(op, "operator", "operator")
            status, page = await get(op, "/api/callbacks")
            assert status == 200, page
            [owed] = page["callbacks"]
            assert (page["owed"], owed["number"], owed["caller"], owed["reason"],
                    owed["queue"], owed["attempts"], owed["state"]) == (
                1, case.number, "138****8000", "abandoned", "energy", 0, "open")
            assert owed["due"].endswith("+08:00")      # the centre's time (Asia/Shanghai)
            # The case was on nobody's screen, but it owes a callback: the operator may see
            # the number to dial, and that is on the audit log.
            path = f"/api/callbacks/{case.number}"
            status, shown = await post(op, f"/api/cases/{case.number}/reveal",
                                       {"reason": "回拨"}, csrf)
            assert (status, shown) == (200, {"number": "13800138000"})
            [audited] = await store.audit_log(case_number=case.number)
            assert (audited.actor, audited.reason) == ("web:operator", "回拨")
            status, tried = await post(op, path, {"result": "no_answer", "attempts": 0}, csrf)
            assert status == 200 and (tried["attempts"], tried["state"]) == (1, "open")
            # A settle based on the list as it was before that attempt: refused.
            status, stale = await post(op, path, {"result": "reached", "attempts": 0}, csrf)
            assert status == 409 and "reload" in stale["error"]
            status, done = await post(op, path, {"result": "reached", "attempts": 1,
                                                 "note": "已解答"}, csrf)
            assert status == 200 and (done["state"], done["settled_by"]) == (
                "reached", "web:operator")
            status, page = await get(op, "/api/callbacks")
            assert (page["owed"], page["callbacks"]) == (0, [])
            # Settled: the number is no longer the operator's to see.
            status, _ = await post(op, f"/api/cases/{case.number}/reveal",
                                   {"reason": "again"}, csrf)
            assert status == 403
        events = [e for e in await store.timeline(case.number)
                  if e.kind in (EventKind.CALLBACK_ATTEMPT, EventKind.CALLBACK_DONE)]
        assert [(e.kind, e.actor) for e in events] == [
            ("callback_attempt", "web:operator"), ("callback_done", "web:operator")]
        assert events[1].detail["note"] == "已解答"


@pytest.fixture
async def web(backend: Backend, tmp_path: Path) -> AsyncIterator[WebRig]:
    store = backend.store()
    await store.open()
    try:
        async with web_rig(tmp_path, store) as rig:
            yield rig
    finally:
        await store.close()


async def abandoned(store: CaseStore, call_id: str, *, minutes_ago: float = 0) -> str:
    case = await store.open_call_case(call_start(call_id))
    await store.finish_call("node-a", call_id, Outcome.ABANDONED,
                            datetime.now(UTC) - timedelta(minutes=minutes_ago))
    return case.number


async def test_roles_and_bad_input(web: WebRig) -> None:
    owed = await abandoned(web.store, "roles.1", minutes_ago=45)
    answered = await web.store.open_call_case(call_start("roles.2", "13900139000"))
    await web.store.finish_call("node-a", "roles.2", Outcome.ANSWERED, datetime.now(UTC))
    path = f"/api/callbacks/{owed}"
    async with web.client() as anon:
        assert (await get(anon, "/api/callbacks"))[0] == 401
    async with web.client() as dept:
        csrf = await login(dept, "department", "department")
        assert (await get(dept, "/api/callbacks"))[0] == 403
        assert (await post(dept, path, {"result": "reached"}, csrf))[0] == 403
    async with web.client() as sup:
        csrf = await login(sup, "supervisor", "supervisor")
        status, page = await get(sup, "/api/callbacks")
        assert status == 200 and (page["owed"], page["overdue"]) == (1, 1)
        assert page["callbacks"][0]["overdue"] is True
        for params in ({"limit": "0"}, {"limit": "501"}, {"offset": "-1"}, {"limit": "x"},
                       {"limit": "²"}, {"offset": "٣"}):
            status, answer = await get(sup, "/api/callbacks", **params)
            assert status == 400 and "must be a whole number" in answer["error"], params
        async with sup.post(path, json={"result": "reached"}) as r:    # no CSRF token
            assert r.status == 403
        for body, says in [({"result": "maybe"}, "result"), ({}, "result"),
                           ({"result": "reached", "note": "x" * 501}, "note"),
                           ({"result": "reached", "note": "a\x00b"}, "NUL"),
                           ({"result": "reached", "attempts": "0"}, "attempts"),
                           ({"result": "reached", "attempts": -1}, "attempts"),
                           ({"result": "reached", "who": "me"}, "who"), ([], "")]:
            status, answer = await post(sup, path, body, csrf)
            assert status == 400 and says in answer["error"], (body, answer)
        status, answer = await post(sup, "/api/callbacks/20990101000001",
                                    {"result": "reached"}, csrf)
        assert status == 404 and "no case" in answer["error"]
        status, answer = await post(sup, f"/api/callbacks/{answered.number}",
                                    {"result": "reached"}, csrf)
        assert status == 404 and "owes no callback" in answer["error"]
        # Nothing of that was written: still owed, untried.
        status, page = await get(sup, "/api/callbacks")
        assert [(c["number"], c["attempts"]) for c in page["callbacks"]] == [(owed, 0)]


async def test_two_operators_settling_one_callback_one_gets_a_conflict(web: WebRig) -> None:
    async with web.client() as a, web.client() as b:
        csrf_a, csrf_b = (await login(a, "operator", "operator"),
                          await login(b, "supervisor", "supervisor"))
        for i, (ra, rb) in enumerate([("reached", "given_up"), ("no_answer", "no_answer")]):
            number = await abandoned(web.store, f"race.{i}")
            path = f"/api/callbacks/{number}"
            (sa, ja), (sb, jb) = await asyncio.gather(
                post(a, path, {"result": ra, "attempts": 0}, csrf_a),
                post(b, path, {"result": rb, "attempts": 0}, csrf_b))
            assert sorted([sa, sb]) == [200, 409], (ja, jb)
            loser = jb if sa == 200 else ja
            assert "already settled" in loser["error"] or "changed meanwhile" in loser["error"]
            kinds = [e.kind for e in await web.store.timeline(number)]
            assert kinds.count("callback_attempt") + kinds.count("callback_done") == 1


async def test_the_list_is_a_503_while_the_database_is_away(
        pg_proxy: TcpProxy, pg_url: str, tmp_path: Path) -> None:
    url = make_url(pg_url).set(host="127.0.0.1", port=pg_proxy.port)
    schema = f"t_console_cb_{uuid.uuid4().hex[:12]}"
    store = CaseStore(url.render_as_string(hide_password=False), secret_key=SECRET,
                      schema=schema, connect_timeout_s=0.5, command_timeout_s=0.5)
    await store.open()
    try:
        number = await abandoned(store, "away.1")
        async with web_rig(tmp_path, store) as rig, rig.client() as c:
            csrf = await login(c, "operator", "operator")
            pg_proxy.stall()
            async with asyncio.timeout(30):   # a guard against a hang, not a measurement
                status, answer = await get(c, "/api/callbacks")
                assert status == 503 and "unavailable" in answer["error"]
                status, answer = await post(c, f"/api/callbacks/{number}",
                                            {"result": "reached"}, csrf)
                assert status == 503 and "unavailable" in answer["error"]
            pg_proxy.resume()
            status, page = await get(c, "/api/callbacks")
            assert status == 200 and [x["number"] for x in page["callbacks"]] == [number]
    finally:
        await store.close()
        await _drop_schema(pg_url, schema)
