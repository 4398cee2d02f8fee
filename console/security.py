"""Request guards: the session cookie, CSRF on every state-changing request, role checks and
the security headers (a strict Content-Security-Policy: scripts only from /static, no inline
script, so even a transcript that slipped through unescaped could not run).

CSRF: a state-changing request (POST, PUT, PATCH, DELETE) must come from our own origin
(``Origin``, else ``Referer``) and carry the session's token (``X-CSRF-Token`` header or a
``csrf_token`` form field). The login form, which has no session yet, uses a double-submit
cookie. Websocket upgrades are GETs that carry the cookie, so their ``Origin`` is checked too.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from console.auth import Role, Session
from console.context import CONSOLE

SESSION: web.RequestKey[Session] = web.RequestKey("console_session", Session)
COOKIE = "hotline_session"
PRE_COOKIE = "hotline_login_csrf"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")


def same_origin(request: web.Request) -> bool:
    """The request's Origin (or Referer) names this very host: a page of ours sent it."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if referer is None:
            # Browsers send Origin on every cross-site POST and websocket: a request with
            # neither comes from a non-browser client, which has no victim's cookie to abuse.
            return True
        origin = referer
    if origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.netloc == request.host


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as e:
        _harden(e.headers, request)
        raise
    if not resp.prepared:
        _harden(resp.headers, request)
    return resp


def _harden(headers: object, request: web.Request) -> None:
    h = headers  # CIMultiDict
    h.setdefault("Content-Security-Policy", CSP)  # type: ignore[attr-defined]
    h.setdefault("X-Content-Type-Options", "nosniff")  # type: ignore[attr-defined]
    h.setdefault("X-Frame-Options", "DENY")  # type: ignore[attr-defined]
    h.setdefault("Referrer-Policy", "same-origin")  # type: ignore[attr-defined]
    if not request.path.startswith("/static/"):
        # Pages and JSON carry case data: never from a shared cache or the back button.
        h.setdefault("Cache-Control", "no-store")  # type: ignore[attr-defined]


@web.middleware
async def sessions_and_csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is not None:
        request[SESSION] = session
    exempt = any(request.path.startswith(p) for p in console.settings.csrf_exempt)
    if request.method in UNSAFE and not exempt:
        if not same_origin(request):
            raise web.HTTPForbidden(text="cross-origin request refused")
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in ("application/x-www-form-urlencoded",
                                                     "multipart/form-data"):
            sent = str((await request.post()).get("csrf_token", ""))
        if session is not None:
            want = session.csrf
        elif request.path == "/login":
            want = request.cookies.get(PRE_COOKIE, "")
        else:
            raise web.HTTPUnauthorized(text="log in first")
        if not want or not sent or not hmac.compare_digest(sent, want):
            raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")
    return await handler(request)


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


def session_of(request: web.Request, *roles: Role) -> Session:
    """The request's session, if its user has one of ``roles`` (any role when none given).
    Pages redirect to the login; APIs answer 401/403."""
    session: Session | None = request.get(SESSION)
    wants_html = request.method == "GET" and "text/html" in request.headers.get("Accept", "")
    if session is None:
        if wants_html:
            raise web.HTTPFound("/login")
        raise web.HTTPUnauthorized(text="log in first")
    if roles and session.user.role not in roles:
        raise web.HTTPForbidden(text=f"{session.user.role} may not do this")
    return session


def require_origin(request: web.Request) -> None:
    """For websocket upgrades (GET requests that act with the session's cookie)."""
    if not same_origin(request):
        raise web.HTTPForbidden(text="cross-origin websocket refused")
