"""What the console's handlers share, kept on the app under one key (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from console.auth import LoginThrottle, SessionStore, Users
from console.settings import ConsoleSettings
from console.ws import Hub

if TYPE_CHECKING:
    from console.advisor import AdvisorRunner
    from console.audit import AuditLog
    from console.board import QueueStats
    from console.screenpop import PopTracker
    from ivr.service import HotlineService


@dataclass(eq=False)
class Console:
    service: HotlineService
    settings: ConsoleSettings
    users: Users
    sessions: SessionStore
    hub: Hub
    stats: QueueStats
    pops: PopTracker
    audit: AuditLog
    advisor: AdvisorRunner
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
