"""The web app (aiohttp): health and live JSON for now; operator and admin pages build on it.

Background work belongs to the service; the app only reads from it.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ivr.config import WebConfig
from ivr.service import HotlineService

log = logging.getLogger("hotline.web")

SERVICE: web.AppKey[HotlineService] = web.AppKey("service", HotlineService)


async def _health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    up = service.link.is_up
    return web.json_response({"ami": service.link.state.value,
                              "calls_in_progress": len(service.calls.sessions)},
                             status=200 if up else 503)


async def _calls(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    out: list[dict[str, Any]] = []
    for s in service.calls.sessions.values():
        out.append({"uniqueid": s.info.uniqueid, "channel": s.info.channel,
                    "case": s.state.case_number, "topic": s.state.topic,
                    "queue": s.state.queue_joined, "agent": s.state.agent,
                    "ivr_path": s.state.ivr_path})
    return web.json_response(out)


def build_app(service: HotlineService) -> web.Application:
    app = web.Application()
    app[SERVICE] = service
    app.router.add_get("/healthz", _health)
    app.router.add_get("/api/calls", _calls)
    return app


class WebConsole:
    def __init__(self, service: HotlineService, cfg: WebConfig) -> None:
        self._app = build_app(service)
        self._cfg = cfg
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._cfg.host, self._cfg.port)
        await site.start()
        log.info("web console on http://%s:%s/", self._cfg.host, self._cfg.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
