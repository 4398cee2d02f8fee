"""Settings of the web console: what ``[web]`` in the configuration file will carry.

Until ``ivr.config.WebConfig`` has these keys, ``WebConsole`` and ``build_app`` take them as
arguments; a ``WebConfig`` that has any of them (same names) is used as it is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from console.auth import WebUser


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    users: list[WebUser] = Field(default_factory=list)
    # Set behind HTTPS (a TLS-terminating proxy): cookies are then never sent in clear.
    secure_cookies: bool = False
    session_idle_s: float = Field(default=8 * 3600.0, gt=0)
    # Every admin change (queue members, penalties, pauses, routing parameters) as JSON lines.
    audit_log: str = "var/console-audit.jsonl"
    service_level_s: float = Field(default=20.0, gt=0)   # "answered within" for the board
    ws_queue_size: int = Field(default=256, ge=8)         # messages a slow screen may lag
    board_interval_s: float = Field(default=1.0, gt=0)    # rebuilt this often without events
    board_min_gap_s: float = Field(default=0.1, ge=0)     # pushes at most this often
    # State-changing paths that authenticate otherwise (Open311's api_key), so need no CSRF
    # token: they never act on a browser session's cookie.
    csrf_exempt: tuple[str, ...] = ("/open311/",)

    @classmethod
    def from_web_config(cls, cfg: Any, **overrides: Any) -> ConsoleSettings:
        values = {k: getattr(cfg, k) for k in cls.model_fields if hasattr(cfg, k)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
