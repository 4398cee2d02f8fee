"""The web app (aiohttp): login, the operator's screen pops, the supervisor's live board and
queue controls, a department's cases, ``/metrics``, health, and Open311 GeoReport v2 (the web
and app channel of the case store, configured by ``[open311]``). The JSON API under ``/api/``
is described by the OpenAPI document at ``/api/openapi.json`` (``console.openapi_console``).

Background work (the board pusher) runs in the app's ``cleanup_ctx``; everything the handlers
share is one ``Console`` on the app (``console.context.CONSOLE``). AMI events reach the console
through one listener on the service's link, registered when the app starts and silenced when
it stops (the link has no way to remove a listener).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiohttp import web

from console.admin import add_admin_routes, board_pusher
from console.advisor import AdvisorRunner
from console.audit import AuditLog
from console.auth import Role, SessionStore, Users, WebUser, hash_password
from console.board import QueueStats
from console.callbacks import add_callback_routes
from console.context import CONSOLE, Console
from console.department import add_department_routes
from console.metrics import setup_metrics
from console.open311 import add_open311_routes, services_from_config
from console.openapi_console import add_console_openapi_route
from console.operator import add_operator_routes
from console.pages import add_page_routes
from console.screenpop import POP_EVENTS, PopTracker
from console.security import Handler, security_headers, session_of, sessions_and_csrf
from console.settings import ConsoleSettings
from console.ws import Hub
from ivr.aio import cancel_and_wait
from ivr.ami.events import (
    AgentEvent,
    AmiEvent,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueMemberEvent,
)
from ivr.config import WebConfig
from ivr.node import AsteriskNode
from ivr.service import HotlineService

log = logging.getLogger("hotline.web")

# What changes the board: callers joining and leaving queues, agents ringing, answering and
# hanging up, members added, removed, paused or re-penalised.
BOARD_EVENTS = (QueueCallerJoin, QueueCallerLeave, QueueCallerAbandon, AgentEvent,
                QueueMemberEvent)

SERVICE: web.AppKey[HotlineService] = web.AppKey("service", HotlineService)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors under ``/api/`` as ``{"error": message}`` (what ``/api/openapi.json`` says
    and common.js reads), whoever raised them: a handler, the CSRF guard or the router.
    Pages keep aiohttp's plain-text errors; Open311 has its own format."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        keep = {k: v for k, v in e.headers.items()
                if k.lower() not in ("content-type", "content-length")}
        return web.json_response({"error": e.text or e.reason}, status=e.status,
                                 reason=e.reason, headers=keep)


async def _health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    up = service.link.is_up
    return web.json_response({"ami": service.link.state.value,
                              "calls_in_progress": len(service.calls.sessions)},
                             status=200 if up else 503)


async def _calls(request: web.Request) -> web.Response:
    session_of(request, Role.OPERATOR, Role.SUPERVISOR)
    service = request.app[SERVICE]
    out: list[dict[str, Any]] = []
    for s in service.calls.sessions.values():
        out.append({"uniqueid": s.info.uniqueid, "channel": s.info.channel,
                    "case": s.state.case_number, "topic": s.state.topic,
                    "queue": s.state.queue_joined, "agent": s.state.agent,
                    "ivr_path": s.state.ivr_path})
    return web.json_response(out)


async def _me(request: web.Request) -> web.Response:
    s = session_of(request)
    return web.json_response({"user": s.user.name, "role": str(s.user.role),
                              "display_name": s.user.display_name, "member": s.member,
                              "department": s.user.department})


def _bootstrap_users() -> list[WebUser]:
    # No users configured: one supervisor with a random password, logged once, so a fresh
    # install is reachable and never open with a known password.
    password = secrets.token_urlsafe(12)
    log.warning("no [[web.users]] configured: log in as 'admin' with password %s and add "
                "users to the configuration", password)
    return [WebUser(name="admin", password_hash=hash_password(password),
                    role=Role.SUPERVISOR, display_name="Bootstrap admin")]


def build_app(service: HotlineService, *, settings: ConsoleSettings | None = None,
              users: Iterable[WebUser] | None = None) -> web.Application:
    settings = settings or ConsoleSettings()
    user_list = list(users) if users is not None else list(settings.users)
    sessions = SessionStore(idle_s=settings.session_idle_s)
    hub = Hub(queue_size=settings.ws_queue_size, alive=sessions.valid)
    console = Console(
        service=service, settings=settings, users=Users(user_list or _bootstrap_users()),
        sessions=sessions, hub=hub,
        stats=QueueStats(service.config.service.timezone, settings.service_level_s),
        pops=PopTracker(service, hub), audit=AuditLog(settings.audit_log),
        advisor=AdvisorRunner())
    # json_errors inside security_headers (its answers get the headers too) and outside
    # sessions_and_csrf (whose refusals are API errors like any other).
    app = web.Application(middlewares=[security_headers, json_errors, sessions_and_csrf],
                          client_max_size=256 * 1024)
    app[SERVICE] = service
    app[CONSOLE] = console
    app.router.add_get("/healthz", _health)
    app.router.add_get("/api/calls", _calls)
    app.router.add_get("/api/me", _me)
    add_console_openapi_route(app)
    add_page_routes(app)
    add_operator_routes(app)
    add_admin_routes(app)
    add_department_routes(app)
    add_callback_routes(app)
    setup_metrics(app, console)
    o311 = service.config.open311
    if o311.enabled:
        add_open311_routes(app, service.store, api_keys=set(o311.api_keys),
                           services=services_from_config(service.config),
                           jurisdiction_id=o311.jurisdiction_id or None)
    app.cleanup_ctx.append(_running)
    app.on_shutdown.append(_close_websockets)
    return app


async def _close_websockets(app: web.Application) -> None:
    # Before the server waits for its handlers to end (up to a minute): every open screen is
    # a handler that ends only when its socket closes. The pages reconnect on their own.
    await app[CONSOLE].hub.close_all()


async def _running(app: web.Application) -> AsyncIterator[None]:
    console = app[CONSOLE]
    active = True
    board_changed = asyncio.Event()

    def on_event(node: AsteriskNode, ev: AmiEvent) -> None:
        # Registered after the call registry and the queue-state feed, so sessions and live
        # state already reflect ``ev`` when the board and the screen pops read them.
        if not active:
            return
        console.pops.on_event(ev, node)
        if node is console.service.nodes[0]:
            console.stats.on_event(ev)
            if isinstance(ev, BOARD_EVENTS):
                board_changed.set()

    # Every Asterisk's agents get their screen pops; the board (live state and its
    # statistics) shows the first node's queues, so only that link hands over every event.
    first, *others = console.service.nodes
    first.link.add_listener(functools.partial(on_event, first))
    for node in others:
        node.link.add_listener(functools.partial(on_event, node), POP_EVENTS)
    pusher = asyncio.create_task(board_pusher(console, board_changed), name="board-pusher")
    try:
        yield
    finally:
        active = False
        await cancel_and_wait(pusher)
        await console.hub.close_all()
        await console.pops.stop()
        await console.advisor.stop()


class WebConsole:
    """The app on ``cfg.host:cfg.port``. ``users``/``settings`` until ``[web]`` carries them
    (a ``WebConfig`` with ``users`` etc. is read as it is)."""

    def __init__(self, service: HotlineService, cfg: WebConfig, *,
                 users: Iterable[WebUser] | None = None,
                 settings: ConsoleSettings | None = None) -> None:
        settings = settings or ConsoleSettings.from_web_config(cfg)
        self._app = build_app(service, settings=settings, users=users)
        self._cfg = cfg
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def app(self) -> web.Application:
        return self._app

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._cfg.host, self._cfg.port)
        await site.start()
        addresses = self._runner.addresses   # the bound port when cfg.port is 0 (tests)
        self.port = int(addresses[0][1]) if addresses else self._cfg.port
        log.info("web console on http://%s:%s/", self._cfg.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
