"""Helpers for the console tests: pbxsim + service + web console on real TCP ports, and a
logged-in HTTP client. (No tests here; the console test modules import from it.)"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from cases import CaseStore
from console.app import WebConsole, build_app
from console.auth import Role, WebUser, demo_users, hash_password
from console.settings import ConsoleSettings
from ivr.config import load_config
from ivr.service import HotlineService
from pbxsim import CitizenScript
from tests.callpath_fixtures import Rig, rig

CHEAP = {"n": 2**10, "r": 8, "p": 1}


def users() -> list[WebUser]:
    return [*demo_users(), WebUser(name="agent1001", password_hash=hash_password("pw", **CHEAP),
                                   role=Role.OPERATOR, member="agent1001",
                                   interface="Local/1001@agents/n")]


@dataclass
class ConsoleRig:
    rig: Rig
    web: WebConsole
    base: str
    audit_path: Path

    def client(self) -> aiohttp.ClientSession:
        # unsafe=True: keep cookies for an IP-address host (127.0.0.1).
        return aiohttp.ClientSession(self.base, cookie_jar=aiohttp.CookieJar(unsafe=True))


@asynccontextmanager
async def console_rig(tmp_path: Path, **rig_kw: Any) -> AsyncIterator[ConsoleRig]:
    async with rig(tmp_path, **rig_kw) as r:
        audit = tmp_path / "audit.jsonl"
        settings = ConsoleSettings(audit_log=str(audit), board_interval_s=0.1)
        web_cfg = r.config.web.model_copy(update={"host": "127.0.0.1", "port": 0})
        web = WebConsole(r.service, web_cfg, users=users(), settings=settings)
        await web.start()
        try:
            yield ConsoleRig(r, web, f"http://127.0.0.1:{web.port}", audit)
        finally:
            await web.stop()


async def login(client: aiohttp.ClientSession, name: str, password: str) -> str:
    """Log in through the form; returns the session's CSRF token (from the page)."""
    async with client.get("/login") as r:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
    assert token is not None
    async with client.post("/login", data={"csrf_token": token.group(1), "username": name,
                                           "password": password},
                           allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        home = r.headers["Location"]
    async with client.get(home, headers={"Accept": "text/html"}) as r:
        assert r.status == 200, home
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', await r.text())
    assert csrf is not None
    return csrf.group(1)


@asynccontextmanager
async def operator_feed(client: aiohttp.ClientSession, base: str
                        ) -> AsyncIterator[list[dict[str, Any]]]:
    """The operator websocket of a logged-in client: every message it receives, as it comes."""
    ws = await client.ws_connect("/ws/operator", headers={"Origin": base})
    msgs: list[dict[str, Any]] = []

    async def pump() -> None:
        async for m in ws:
            msgs.append(json.loads(m.data))

    reader = asyncio.create_task(pump())
    try:
        yield msgs
    finally:
        reader.cancel()
        await ws.close()


def headers(csrf: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf}


async def wait_for(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)


def caller(keys: str = "1", number: str = "13800138000", patience_s: float = 60.0,
           key_delay_s: float = 0.3, **kw: Any) -> CitizenScript:
    return CitizenScript(caller_num=number, caller_name="李先生",
                         keys=[(keys, key_delay_s)] if keys else [], patience_s=patience_s,
                         **kw)


OPEN311_KEY = "k-console-0123456789abcdef"


@dataclass
class WebRig:
    """The console app (no Asterisk) in front of a real case store: for the case form, the
    department's page and Open311, on SQLite or PostgreSQL (the store the test passes)."""

    store: CaseStore
    base: str

    def client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(self.base, cookie_jar=aiohttp.CookieJar(unsafe=True))


@asynccontextmanager
async def web_rig(tmp_path: Path, store: CaseStore) -> AsyncIterator[WebRig]:
    """``store`` must be open; it stays the caller's to close."""
    path = tmp_path / "hotline.toml"
    path.write_text(f'[open311]\napi_keys = ["{OPEN311_KEY}"]\n[database]\n'
                    f'url = "sqlite+aiosqlite:///{tmp_path / "unused.db"}"\n',
                    encoding="utf-8")
    service = HotlineService(load_config(path, env={}))  # its AMI link is never started
    service.store = store          # before build_app: Open311 takes the store at build time
    app = build_app(service, settings=ConsoleSettings(audit_log=str(tmp_path / "audit.jsonl")),
                    users=users())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield WebRig(store, f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()
