"""Login, logout and the HTML shells of the pages.

Pages are static shells filled by their scripts from JSON and websockets; every value a
script shows goes through ``textContent`` (never ``innerHTML``), so what a caller said is
shown as text whatever it contains. The few server-side values (user name, CSRF token) are
HTML-escaped here.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from aiohttp import web

from console.auth import Role, Session
from console.context import CONSOLE
from console.security import COOKIE, PRE_COOKIE, SESSION, new_pre_token, session_of

log = logging.getLogger("hotline.web")

HOME = {Role.OPERATOR: "/operator", Role.SUPERVISOR: "/admin", Role.DEPARTMENT: "/department"}
TEMPLATES = Path(__file__).parent / "templates"


def _page(name: str, **values: str) -> str:
    """``templates/<name>.html`` with ``{{key}}`` replaced by the escaped value."""
    text = (TEMPLATES / f"{name}.html").read_text(encoding="utf-8")
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", html.escape(v, quote=True))
    return text


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8")


def _shell(name: str, s: Session, title: str) -> web.Response:
    return _html(_page(name, title=title, csrf=s.csrf, user=s.user.name,
                       display=s.user.display_name or s.user.name, role=str(s.user.role),
                       member=s.member or "", interface=s.interface or ""))


async def root(request: web.Request) -> web.Response:
    s = request.get(SESSION)
    raise web.HTTPFound(HOME[s.user.role] if s is not None else "/login")


async def login_form(request: web.Request) -> web.Response:
    token = new_pre_token()
    resp = _html(_page("login", csrf=token, error=request.query.get("error", "")[:100]))
    secure = request.app[CONSOLE].settings.secure_cookies
    resp.set_cookie(PRE_COOKIE, token, httponly=True, samesite="Strict", secure=secure,
                    path="/login")
    return resp


async def login(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    form = await request.post()
    name = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:256]
    address = request.remote or ""    # the throttle's key with the name (see LoginThrottle)
    if console.throttle.blocked(address, name):
        raise web.HTTPFound("/login?error=Too+many+attempts%3B+wait+a+few+minutes")
    user = await console.users.authenticate(name, password)
    if user is None:
        console.throttle.failed(address, name)
        log.info("console login refused for %r from %s", name, address)
        raise web.HTTPFound("/login?error=Wrong+name+or+password")
    console.throttle.succeeded(address, name)
    old = request.get(SESSION)
    if old is not None:
        console.sessions.drop(old.sid)   # a fresh id at every login (no session fixation)
    s = console.sessions.create(user)
    log.info("console login: %s (%s)", user.name, user.role)
    resp = web.HTTPFound(HOME[user.role])
    resp.set_cookie(COOKIE, s.sid, httponly=True, samesite="Strict",
                    secure=console.settings.secure_cookies, path="/")
    resp.del_cookie(PRE_COOKIE, path="/login")
    raise resp


async def logout(request: web.Request) -> web.Response:
    s = request.get(SESSION)
    if s is not None:
        request.app[CONSOLE].sessions.drop(s.sid)
        request.app[CONSOLE].hub.end_session(s.sid)     # its open screens stop now
    resp = web.HTTPFound("/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp


async def operator_page(request: web.Request) -> web.Response:
    s = session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    return _shell("operator", s, "Operator")


async def admin_page(request: web.Request) -> web.Response:
    s = session_of(request, Role.SUPERVISOR)
    return _shell("admin", s, "Queues")


async def department_page(request: web.Request) -> web.Response:
    s = session_of(request, Role.DEPARTMENT, Role.SUPERVISOR)
    return _shell("department", s, "Department cases")


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/operator", operator_page)
    app.router.add_get("/admin", admin_page)
    app.router.add_get("/department", department_page)
    app.router.add_static("/static/", Path(__file__).parent / "static", append_version=False)
