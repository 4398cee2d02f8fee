"""The console's case form, a department's list and the case endpoints' answers to bad input,
against a real case store on SQLite and PostgreSQL (the console without Asterisk)."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from cases import Action, CaseStore, DepartmentKind, DepartmentSeed
from tests.cases_fixtures import (  # noqa: F401
    DEPARTMENTS,
    SECRET,
    Backend,
    TcpProxy,
    _drop_schema,
    backend,
    call_start,
    pg_proxy,
    pg_url,
)
from tests.test_console_fixtures import WebRig, headers, login, web_rig

# The demo department user's department (console.auth.demo_users).
HOUSING = DepartmentSeed(code="330100-housing", name="住建局", kind=DepartmentKind.AGENCY,
                         parent="3100")


@pytest.fixture
async def web(backend: Backend, tmp_path: Path) -> AsyncIterator[WebRig]:
    store = backend.store()
    await store.open()
    try:
        await store.load_departments([*DEPARTMENTS, HOUSING])
        async with web_rig(tmp_path, store) as rig:
            yield rig
    finally:
        await store.close()


async def post(client: aiohttp.ClientSession, path: str, body: dict[str, Any],
               csrf: str) -> tuple[int, Any]:
    async with client.post(path, json=body, headers=headers(csrf)) as r:
        return r.status, await r.json()


async def test_two_saves_from_the_same_version_one_is_refused(web: WebRig) -> None:
    """Two operators save the case they both loaded at one version: one save wins, the other
    is told to reload (409) instead of silently overwriting the first (a lost update)."""
    async with web.client() as a, web.client() as b:
        csrf_a, csrf_b = await login(a, "supervisor", "supervisor"), await login(
            b, "supervisor", "supervisor")
        for i in range(5):
            case = await web.store.open_call_case(call_start(f"race.{i}"))
            (sa, ja), (sb, jb) = await asyncio.gather(
                post(a, f"/api/cases/{case.number}",
                     {"description": f"A's notes {i}", "expected_version": case.version}, csrf_a),
                post(b, f"/api/cases/{case.number}",
                     {"description": f"B's notes {i}", "expected_version": case.version}, csrf_b))
            assert sorted([sa, sb]) == [200, 409], (ja, jb)
            winner = ja if sa == 200 else jb
            loser = jb if sa == 200 else ja
            assert "reload" in loser["error"]
            final = await web.store.get(case.number)
            assert final is not None and final.description == winner["description"]
            assert final.version == winner["version"] == case.version + 1


async def test_a_form_saves_what_it_changed_and_keeps_another_editors_field(
        web: WebRig) -> None:
    """The operator's form sends the fields it changed with the values it showed (``base``):
    a supervisor's edit of another field meanwhile is kept and refuses nothing; an edit of
    the same field is a 409 naming it; a field the form does not have is a 400."""
    case = await web.store.open_call_case(call_start("base.1"))
    async with web.client() as op, web.client() as sup:
        csrf_op, csrf_sup = await login(op, "supervisor", "supervisor"), await login(
            sup, "supervisor", "supervisor")
        status, body = await post(sup, f"/api/cases/{case.number}",
                                  {"district": "黄浦区", "base": {"district": None}}, csrf_sup)
        assert status == 200, body
        status, body = await post(op, f"/api/cases/{case.number}", {
            "description": "水管爆裂", "base": {"description": None}}, csrf_op)
        assert status == 200, body
        assert (body["description"], body["district"]) == ("水管爆裂", "黄浦区")
        status, body = await post(op, f"/api/cases/{case.number}", {
            "district": "徐汇区", "base": {"district": None}}, csrf_op)
        assert status == 409 and "district" in body["error"] and "黄浦区" in body["error"]
        status, body = await post(op, f"/api/cases/{case.number}", {
            "district": "徐汇区", "base": {"colour": None}}, csrf_op)
        assert status == 400 and "colour" in body["error"]
        final = await web.store.get(case.number)
        assert final is not None and (final.district, final.description) == ("黄浦区", "水管爆裂")


async def test_a_refused_action_saves_nothing(web: WebRig) -> None:
    """Fields and a dispatch the lifecycle refuses (no such department): 400, and the case is
    as it was, so the operator's retry starts from the version they still have."""
    case = await web.store.open_call_case(call_start("refused.1"))
    before = await web.store.timeline(case.number)
    async with web.client() as c:
        csrf = await login(c, "supervisor", "supervisor")
        status, body = await post(c, f"/api/cases/{case.number}", {
            "description": "水管爆裂", "urgency": "critical", "action": "dispatch",
            "department": "no-such-department", "expected_version": case.version}, csrf)
        assert status == 400 and "no-such-department" in body["error"]
        after = await web.store.get(case.number)
        assert after == case
        assert await web.store.timeline(case.number) == before
        # The same form with a department that exists: saved and dispatched, in one version.
        status, body = await post(c, f"/api/cases/{case.number}", {
            "description": "水管爆裂", "urgency": "critical", "action": "dispatch",
            "department": "water-co", "expected_version": case.version}, csrf)
        assert status == 200, body
        assert (body["description"], body["urgency"], body["status"], body["department"]) \
            == ("水管爆裂", "critical", "dispatched", "water-co")
        assert body["version"] > case.version


async def test_a_closed_case_is_not_rewritten(web: WebRig) -> None:
    case = await web.store.open_call_case(call_start("closed.1"))
    async with web.client() as c:
        csrf = await login(c, "supervisor", "supervisor")
        status, closed = await post(c, f"/api/cases/{case.number}",
                                    {"description": "answered on the call", "action": "close"},
                                    csrf)
        assert status == 200 and closed["status"] == "closed", closed
        status, body = await post(c, f"/api/cases/{case.number}",
                                  {"urgency": "critical", "description": "rewritten after close"},
                                  csrf)
        assert status == 409 and "reopen" in body["error"]
        after = await web.store.get(case.number)
        assert after is not None and after.version == closed["version"]
        assert (after.description, str(after.urgency)) == ("answered on the call", "normal")
        # The form sent again as it was (a double click): nothing changes, nothing refused.
        status, body = await post(c, f"/api/cases/{case.number}",
                                  {"description": "answered on the call", "urgency": "normal"},
                                  csrf)
        assert status == 200 and body["version"] == closed["version"]


async def open_cases_in_bulk(backend: Backend, count: int) -> None:
    """``count`` open cases with no department, all newer than any the store wrote today:
    written with plain SQL, as a busy centre's backlog, in a fraction of the store's time."""
    at = "2099-01-01 00:00:00" + ("" if backend.name == "sqlite" else "+00")
    for first in range(0, count, 250):
        rows = ", ".join(
            f"('20990101{i:06d}', 'bulk', 'b.{i}', 'normal', '[]',"
            f" 'accepted', '{at}', '{at}')" for i in range(first, min(first + 250, count)))
        await backend.raw("INSERT INTO cases (number, node, call_id, urgency, ivr_path, status,"
                          f" created_at, updated_at) VALUES {rows}")


async def test_a_departments_older_cases_stay_on_its_list(web: WebRig, backend: Backend) -> None:
    """A case dispatched to a department stays on its list however many newer open cases
    other departments (or nobody yet) have; the list comes a page at a time."""
    numbers = []
    for i in range(3):
        case = await web.store.open_call_case(call_start(f"dept.{i}"))
        await web.store.transition(case.number, Action.DISPATCH, actor="t",
                                   department=HOUSING.code)
        numbers.append(case.number)
    await open_cases_in_bulk(backend, 1200)
    async with web.client() as c:
        await login(c, "department", "department")
        async with c.get("/api/department/cases") as r:
            assert r.status == 200
            body = await r.json()
        assert [x["number"] for x in body["cases"]] == numbers[::-1]
        assert body["next_offset"] is None
        # Pages: newest first, each says where the next one starts.
        async with c.get("/api/department/cases", params={"limit": "2"}) as r:
            first = await r.json()
        async with c.get("/api/department/cases",
                         params={"limit": "2", "offset": str(first["next_offset"])}) as r:
            second = await r.json()
        assert [x["number"] for x in first["cases"] + second["cases"]] == numbers[::-1]
        assert (first["next_offset"], second["next_offset"]) == (2, None)
        for bad in ({"limit": "0"}, {"limit": "x"}, {"offset": "-1"}, {"limit": "10000"}):
            async with c.get("/api/department/cases", params=bad) as r:
                assert r.status == 400, bad
                assert "must be a whole number" in (await r.json())["error"]


async def test_a_department_sees_times_in_the_centres_time_zone(web: WebRig) -> None:
    """Deadlines are the centre's ("by 17:00" there): the list gives them in its zone, with
    its offset, so the page (which shows the part before the offset) shows the centre's time."""
    case = await web.store.open_call_case(call_start("tz.1"))
    await web.store.edit_case(case.number, {"urgency": "critical"}, actor="t",
                              action="dispatch", department=HOUSING.code)
    stored = await web.store.get(case.number)
    assert stored is not None and stored.deadline is not None
    local = stored.deadline.astimezone(ZoneInfo("Asia/Shanghai"))
    async with web.client() as c:
        csrf = await login(c, "department", "department")
        async with c.get("/api/department/cases") as r:
            [shown] = (await r.json())["cases"]
        assert shown["deadline"] == local.isoformat(timespec="minutes")
        assert shown["deadline"].endswith("+08:00")
        assert datetime.fromisoformat(shown["deadline"]) == stored.deadline.replace(
            second=0, microsecond=0)
        assert shown["created_at"].endswith("+08:00")
        status, started = await post(c, f"/api/department/cases/{case.number}",
                                     {"action": "start", "expected_version": shown["version"]},
                                     csrf)
        assert status == 200 and started["deadline"] == shown["deadline"]


async def test_text_the_database_cannot_store_is_a_400_that_changes_nothing(
        web: WebRig) -> None:
    """A NUL character (PostgreSQL refuses it; SQLite would keep it): refused alike on both
    databases, with the field named, before anything is written."""
    case = await web.store.open_call_case(call_start("nul.1"))
    before = await web.store.timeline(case.number)
    async with web.client() as c:
        csrf = await login(c, "supervisor", "supervisor")
        for body, field in [({"description": "x\x00y"}, "description"),
                            ({"district": "\x00"}, "district"),
                            ({"description": "ok", "action": "close", "reason": "\x00"},
                             "reason"),
                            ({"action": "dispatch", "department": "water\x00"}, "department")]:
            status, answer = await post(c, f"/api/cases/{case.number}", body, csrf)
            assert status == 400 and field in answer["error"], (body, answer)
            # One line that says what is wrong, not a validation library's report.
            assert "NUL" in answer["error"] and "\n" not in answer["error"]
            assert "pydantic" not in answer["error"]
        status, answer = await post(c, f"/api/cases/{case.number}/reveal",
                                    {"reason": "call\x00back"}, csrf)
        assert status == 400 and "NUL" in answer["error"]
        assert await web.store.audit_log(case_number=case.number) == []
        # A path or a query the database could not even look up: no such case / bad request.
        status, answer = await post(c, "/api/cases/%00", {"description": "x"}, csrf)
        assert status == 404 and "no case" in answer["error"]
        async with c.get("/api/department/cases", params={"code": "\x00"}) as r:
            assert r.status == 400 and "NUL" in (await r.json())["error"]
    assert await web.store.get(case.number) == case
    assert await web.store.timeline(case.number) == before


async def test_a_department_step_with_a_nul_reason_is_a_400(web: WebRig) -> None:
    case = await web.store.open_call_case(call_start("nul.2"))
    case = await web.store.transition(case.number, Action.DISPATCH, actor="t",
                                      department=HOUSING.code)
    async with web.client() as c:
        csrf = await login(c, "department", "department")
        status, answer = await post(c, f"/api/department/cases/{case.number}", {
            "action": "return", "reason": "not\x00ours", "expected_version": case.version},
            csrf)
        assert status == 400 and "NUL" in answer["error"]
    assert await web.store.get(case.number) == case


async def test_a_store_error_is_a_clear_503(web: WebRig, backend: Backend) -> None:
    """A case whose caller number another secret key encrypted (a node configured with the
    wrong key wrote it): the store cannot show it. The console says so (503, with the store's
    reason), not a bare 500, and the refused save leaves the case as it was."""
    other = backend.foreign_store()
    await other.open()
    try:
        case = await other.open_call_case(call_start("key.1"))
    finally:
        await other.close()
    async with web.client() as c:
        csrf = await login(c, "supervisor", "supervisor")
        status, answer = await post(c, f"/api/cases/{case.number}", {"district": "x"}, csrf)
        assert status == 503, answer
        assert answer["error"].startswith(f"the case store could not save case {case.number}")
        assert "secret key" in answer["error"]
        status, answer = await post(c, f"/api/cases/{case.number}/reveal",
                                    {"reason": "callback"}, csrf)
        assert status == 503 and "secret key" in answer["error"]
    rows = await backend.raw(f"SELECT district, version FROM cases WHERE number = '{case.number}'")
    assert rows == [(None, case.version)]


async def test_a_database_that_stops_answering_is_a_503_not_a_hang(
        pg_proxy: TcpProxy, pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL stops answering on the pool's open connections: the console's requests get
    503 after the store's command timeout instead of hanging, and work again after."""
    url = make_url(pg_url).set(host="127.0.0.1", port=pg_proxy.port)
    schema = f"t_console_stall_{uuid.uuid4().hex[:12]}"
    store = CaseStore(url.render_as_string(hide_password=False), secret_key=SECRET,
                      schema=schema, connect_timeout_s=0.5, command_timeout_s=0.5)
    await store.open()
    try:
        case = await store.open_call_case(call_start("stall.1"))
        async with web_rig(tmp_path, store) as rig, rig.client() as c:
            csrf = await login(c, "supervisor", "supervisor")
            pg_proxy.stall()
            async with asyncio.timeout(30):   # a guard against the hang, not a measurement
                status, answer = await post(c, f"/api/cases/{case.number}",
                                            {"description": "x"}, csrf)
                assert status == 503 and "unavailable" in answer["error"]
                async with c.get("/api/department/cases",
                                 params={"code": HOUSING.code}) as r:
                    assert r.status == 503
                async with c.get("/open311/v2/requests.json") as r:
                    assert r.status == 503
            pg_proxy.resume()
            status, answer = await post(c, f"/api/cases/{case.number}", {"description": "x"},
                                        csrf)
            assert status == 200 and answer["description"] == "x"
    finally:
        await store.close()
        await _drop_schema(pg_url, schema)
