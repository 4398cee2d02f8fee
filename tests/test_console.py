"""Web console over HTTP and websockets against pbxsim: login, CSRF, roles, screen pops,
admin changes over AMI, audit, metrics."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from cases import CaseStore, CaseStoreUnavailable
from console.auth import Role, WebUser, hash_password, verify_password
from tests.cases_fixtures import SECRET
from tests.test_console_fixtures import (
    caller,
    console_rig,
    headers,
    login,
    operator_feed,
    wait_for,
    web_rig,
)


def test_password_hashes_are_salted_scrypt_and_verify() -> None:
    a, b = hash_password("s3cret", n=2**10), hash_password("s3cret", n=2**10)
    assert a != b and a.startswith("scrypt$1024$8$1$")
    assert verify_password("s3cret", a) and verify_password("s3cret", b)
    assert not verify_password("S3cret", a)
    assert not verify_password("s3cret", "plain-text")


def test_user_names_fit_the_record_of_what_they_do() -> None:
    # "web:<name>" is the actor of every change the user makes: 64 characters at most.
    cheap = hash_password("pw", n=2**10)
    assert WebUser(name="a" * 60, password_hash=cheap, role=Role.OPERATOR).name == "a" * 60
    with pytest.raises(ValidationError, match="at most 60"):
        WebUser(name="a" * 61, password_hash=cheap, role=Role.OPERATOR)


async def test_login_roles_csrf_and_headers(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as cr, cr.client() as c:
        async with c.get("/admin", headers={"Accept": "text/html"},
                         allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/login"
        async with c.get("/login") as r:
            csp = r.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert r.headers["X-Frame-Options"] == "DENY"
        # The login form itself needs its token.
        async with c.post("/login", data={"username": "operator", "password": "operator"},
                          allow_redirects=False) as r:
            assert r.status == 403
        csrf = await login(c, "operator", "operator")
        cookie = next(m for m in c.cookie_jar if m.key == "hotline_session")
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        # An operator is not an admin.
        async with c.get("/api/board") as r:
            assert r.status == 403
        body = {"op": "add", "queue": "water", "interface": "Local/9@agents/n"}
        async with c.post("/api/admin/member", json=body, headers=headers(csrf)) as r:
            assert r.status == 403
        # No token, a wrong token, another origin: refused before any handler.
        sign = {"member": "agent2002"}
        async with c.post("/api/operator/signin", json=sign) as r:
            assert r.status == 403
        async with c.post("/api/operator/signin", json=sign, headers=headers("x" + csrf)) as r:
            assert r.status == 403
        async with c.post("/api/operator/signin", json=sign,
                          headers={**headers(csrf), "Origin": "http://evil.example"}) as r:
            assert r.status == 403
        async with c.post("/api/operator/signin", json=sign, headers=headers(csrf)) as r:
            assert r.status == 200
        # Wrong passwords: refused, then throttled (even the right one, for a while).
        async with cr.client() as other:
            for password in ["nope"] * 5 + ["supervisor"]:
                async with other.get("/login") as r:
                    token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
                assert token is not None
                async with other.post("/login", data={"csrf_token": token.group(1),
                                                      "username": "supervisor",
                                                      "password": password},
                                      allow_redirects=False) as r:
                    assert r.status == 302 and r.headers["Location"].startswith("/login?")
            assert not any(m.key == "hotline_session" for m in other.cookie_jar)


async def test_operator_gets_screen_pop_saves_case_and_cannot_touch_others(
        tmp_path: Path) -> None:
    async with console_rig(tmp_path) as cr, cr.client() as c:
        r = cr.rig
        await r.add_agent(1001, "water", talk_s=2.0, answer_s=1.0)
        csrf = await login(c, "agent1001", "pw")
        async with operator_feed(c, cr.base) as msgs:
            call = await r.sim.place_call(caller("1", "13800138000"))
            await wait_for(lambda: any(m.get("type") == "pop" and m.get("phase") == "connected"
                                       for m in msgs))
            pops = [m for m in msgs if m.get("type") == "pop"]
            assert pops[0]["phase"] == "ringing"
            assert pops[-1]["caller"] == "138****8000" and pops[-1]["topic"] == "water"
            assert "13800138000" not in json.dumps(msgs)
            await wait_for(lambda: any(m.get("type") == "pop_detail" for m in msgs))
            detail = next(m for m in msgs if m.get("type") == "pop_detail")
            number = detail["case"]["number"]  # type: ignore[index]
            body = {"case_type": "complaint", "description": "水管爆了 <b>now</b>",
                    "urgency": "urgent", "district": "西湖区"}
            async with c.post(f"/api/cases/{number}", json=body, headers=headers(csrf)) as resp:
                assert resp.status == 200, await resp.text()
            case = await r.service.store.get(number)
            assert case is not None and case.description == "水管爆了 <b>now</b>"
            assert str(case.case_type) == "complaint" and str(case.urgency) == "urgent"
            timeline = await r.service.store.timeline(number)
            assert any(e.actor == "web:agent1001" for e in timeline)
            # Close it on the call: the lifecycle moves.
            async with c.post(f"/api/cases/{number}", json={"action": "close"},
                              headers=headers(csrf)) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["status"] == "closed"
            # Another case, never on this screen: refused.
            async with c.post("/api/cases/20990101000001", json=body,
                              headers=headers(csrf)) as resp:
                assert resp.status == 403
            await call.done
            await wait_for(lambda: any(m.get("phase") == "wrapup" for m in msgs))


async def test_admin_changes_reach_pbxsim_router_and_audit(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as cr, cr.client() as c:
        r = cr.rig
        csrf = await login(c, "supervisor", "supervisor")
        add = {"op": "add", "queue": "energy", "interface": "Local/2001@agents/n",
               "member": "agent2001", "penalty": 3}
        async with c.post("/api/admin/member", json=add, headers=headers(csrf)) as resp:
            assert resp.status == 200, await resp.text()

        def member() -> object:
            snap = r.sim.queue_snapshot()["energy"]
            return next((m for m in snap.members if m.name == "agent2001"), None)

        await wait_for(lambda: member() is not None)
        for op, extra in (("penalty", {"penalty": 5}), ("pause", {"reason": "training"})):
            async with c.post("/api/admin/member", json={**add, "op": op, **extra},
                              headers=headers(csrf)) as resp:
                assert resp.status == 200, await resp.text()
        await wait_for(lambda: getattr(member(), "paused", False)
                       and getattr(member(), "penalty", 0) == 5)
        # The board follows from AMI events.
        await wait_for(lambda: "agent2001" in r.service.live.members.get("energy", {}))
        async with c.get("/api/board") as resp:
            board = await resp.json()
        energy = next(g for g in board["groups"] if g["queue"] == "energy")
        assert energy["agents"]["paused"] == 1
        # Routing parameters: validated, applied to the router at once, audited.
        async with c.post("/api/admin/params", json={"margin_s": -1},
                          headers=headers(csrf)) as resp:
            assert resp.status == 400
        async with c.post("/api/admin/params", json={"margin_s": 25, "park_helpers": False},
                          headers=headers(csrf)) as resp:
            assert resp.status == 200
        params = r.service.router.policy.params  # type: ignore[union-attr]
        assert params.margin_s == 25 and params.park_helpers is False
        async with c.post("/api/admin/member", json={**add, "op": "remove"},
                          headers=headers(csrf)) as resp:
            assert resp.status == 200
        await wait_for(lambda: member() is None)
        lines = [json.loads(x) for x in cr.audit_path.read_text().splitlines()]
        assert [x["action"] for x in lines] == ["member.add", "member.penalty", "member.pause",
                                                "routing.params", "routing.params",
                                                "member.remove"]
        assert lines[3]["ok"] is False and lines[4]["detail"]["margin_s"]["to"] == 25
        assert all(x["actor"] == "web:supervisor" for x in lines)


async def test_metrics_in_prometheus_format(tmp_path: Path) -> None:
    async with console_rig(tmp_path) as cr:
        r = cr.rig
        await r.add_agent(1001, "water", talk_s=0.5, answer_s=0.2)
        call = await r.sim.place_call(caller("1"))
        await call.done
        await r.settle()
        async with aiohttp.ClientSession() as c, c.get(cr.base + "/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
        assert "hotline_ami_up 1.0" in text
        assert 'hotline_queue_calls_answered_total{queue="water"} 1.0' in text
        assert 'hotline_queue_wait_seconds_count{outcome="answered",queue="water"} 1.0' in text
        assert 'hotline_queue_members{queue="water",state="available"}' in text
        assert "hotline_case_store_write_errors_total 0.0" in text


async def test_nobody_answers_as_a_member_bound_to_another_login(tmp_path: Path) -> None:
    """agent1001 is bound to the login agent1001: the shared operator login cannot sign in
    as it (it would get that person's screen pops and reveal numbers in their name), nor can
    a supervisor; a member bound to nobody is free, the bound login keeps its own."""
    store = CaseStore(f"sqlite+aiosqlite:///{tmp_path / 'cases.db'}", secret_key=SECRET)
    await store.open()
    try:
        async with web_rig(tmp_path, store) as rig:
            for name, member, status in [("operator", "agent1001", 403),
                                         ("supervisor", "agent1001", 403),
                                         ("operator", "agent2002", 200),
                                         ("agent1001", "agent1001", 200)]:
                async with rig.client() as c:
                    csrf = await login(c, name, "pw" if name == "agent1001" else name)
                    async with c.post("/api/operator/signin", json={"member": member},
                                      headers=headers(csrf)) as r:
                        assert r.status == status, (name, member, await r.text())
                        if status == 403:
                            assert "another login" in (await r.json())["error"]
                    async with c.get("/api/operator/state") as r:
                        state = await r.json()
                    assert state["member"] == (member if status == 200 else None)
    finally:
        await store.close()


async def _try_login(client: aiohttp.ClientSession, name: str, password: str) -> str:
    """Where the login form sends the browser: the home page, or back with an error."""
    async with client.get("/login") as r:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
    assert token is not None
    async with client.post("/login", data={"csrf_token": token.group(1), "username": name,
                                           "password": password}, allow_redirects=False) as r:
        assert r.status == 302
        return r.headers["Location"]


async def test_failing_on_purpose_does_not_lock_the_real_user_out(tmp_path: Path) -> None:
    """Someone who knows the supervisor's name fails five times from their own machine: they
    are throttled (even with the right password), the supervisor at their desk is not."""
    store = CaseStore(f"sqlite+aiosqlite:///{tmp_path / 'cases.db'}", secret_key=SECRET)
    await store.open()
    try:
        async with web_rig(tmp_path, store) as rig:
            # Another loopback address: another machine, as the server sees it.
            elsewhere = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(rig.base, connector=elsewhere,
                                             cookie_jar=aiohttp.CookieJar(unsafe=True)) as bad:
                for i in range(5):
                    assert "Wrong" in await _try_login(bad, "supervisor", f"guess{i}")
                assert "Too+many" in await _try_login(bad, "supervisor", "supervisor")
            async with rig.client() as desk:
                assert await _try_login(desk, "supervisor", "supervisor") == "/admin"
    finally:
        await store.close()


async def test_a_withheld_number_pops_as_withheld(tmp_path: Path) -> None:
    """A caller who withholds their number arrives as "anonymous" (or "<unknown>" …): the
    pop carries no number (the page shows "withheld"), not a masked placeholder that reads
    like one ("ano**mous"), and no history of every other withheld caller."""
    async with console_rig(tmp_path) as cr, cr.client() as c:
        r = cr.rig
        await r.add_agent(1001, "water", talk_s=1.0, answer_s=0.5)
        await login(c, "agent1001", "pw")
        async with operator_feed(c, cr.base) as msgs:
            call = await r.sim.place_call(caller("1", "anonymous"))
            await wait_for(lambda: any(m.get("type") == "pop_detail" for m in msgs))
            pops = [m for m in msgs if m.get("type") == "pop"]
            assert pops and {p["caller"] for p in pops} == {""}
            detail = next(m for m in msgs if m.get("type") == "pop_detail")
            assert detail["history"] == []
            await call.done


async def test_an_operator_cannot_sign_in_on_a_colleagues_interface(tmp_path: Path) -> None:
    """Pause and resume act on the interface taken at sign-in (QueuePause pauses it in
    every queue): a member not in a queue yet cannot name a colleague's phone, and a member
    in a queue gets its own interface whatever the form says."""
    async with console_rig(tmp_path) as cr, cr.client() as admin, cr.client() as c:
        r = cr.rig
        csrf = await login(admin, "supervisor", "supervisor")
        add = {"op": "add", "queue": "energy", "interface": "Local/2001@agents/n",
               "member": "agent2001"}
        async with admin.post("/api/admin/member", json=add, headers=headers(csrf)) as resp:
            assert resp.status == 200, await resp.text()
        await wait_for(lambda: "agent2001" in r.service.live.members.get("energy", {}))
        csrf = await login(c, "operator", "operator")
        taken = {"member": "agent2002", "interface": "Local/2001@agents/n"}
        async with c.post("/api/operator/signin", json=taken, headers=headers(csrf)) as resp:
            assert resp.status == 403
            assert "agent2001" in await resp.text()
        own = {"member": "agent2001", "interface": "Local/9999@agents/n"}
        async with c.post("/api/operator/signin", json=own, headers=headers(csrf)) as resp:
            assert resp.status == 200
            assert (await resp.json())["interface"] == "Local/2001@agents/n"


async def test_logging_out_closes_the_operators_open_screen(tmp_path: Path) -> None:
    """Screen pops carry callers' details: a socket opened before logout stops with it."""
    async with console_rig(tmp_path) as cr, cr.client() as c:
        csrf = await login(c, "operator", "operator")
        async with c.post("/api/operator/signin", json={"member": "agent2002"},
                          headers=headers(csrf)) as r:
            assert r.status == 200
        ws = await c.ws_connect("/ws/operator", headers={"Origin": cr.base})
        try:
            async with c.post("/logout", headers=headers(csrf), allow_redirects=False) as r:
                assert r.status == 302
            async with asyncio.timeout(5):
                while (await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                    pass                                   # the screen's hello
            assert ws.close_code == 4001
        finally:
            await ws.close()


async def test_a_pop_made_while_the_database_is_down_gets_its_case_when_it_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The case store fails as the call reaches the operator (an outage: reads raise
    CaseStoreUnavailable). The pop says so; once the store answers again the case arrives on
    the screen and the operator can record what the caller said."""
    async with console_rig(tmp_path) as cr, cr.client() as c:
        r = cr.rig
        store = r.service.store
        down = True
        for name in ("get", "get_by_call"):
            real = getattr(store, name)

            async def failing(*a: object, _real: Any = real, **k: object) -> object:
                if down:
                    raise CaseStoreUnavailable("database unreachable (test)")
                return await _real(*a, **k)
            monkeypatch.setattr(store, name, failing)
        await r.add_agent(1001, "water", talk_s=20.0, answer_s=1.0)
        csrf = await login(c, "agent1001", "pw")
        async with operator_feed(c, cr.base) as msgs:
            call = await r.sim.place_call(caller("1", "13800138000"))
            await wait_for(lambda: any(m.get("type") == "pop_detail" and "error" in m
                                       for m in msgs))
            down = False
            await wait_for(lambda: any(m.get("type") == "pop_detail" and m.get("case")
                                       for m in msgs))
            detail = next(m for m in msgs if m.get("type") == "pop_detail" and m.get("case"))
            number = detail["case"]["number"]
            async with c.post(f"/api/cases/{number}", json={"description": "누수"},
                              headers=headers(csrf)) as resp:
                assert resp.status == 200, await resp.text()
            call.hangup()
            await call.done
