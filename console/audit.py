"""The admin audit log: one JSON line per change made from the console, in a file.

A file rather than a case-store table: these are changes to queues and routing, not to cases,
and they must be written even while the database is down (that is when admins change things).
Each line: ``{"at", "actor", "action", "target", "detail", "ok", "error"}``. The last entries
are kept in memory for the admin page.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class AuditLog:
    def __init__(self, path: str | Path, *, keep: int = 200) -> None:
        self.path = Path(path)
        self._recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = asyncio.Lock()   # lines in the order the changes were made
        self._load_tail(keep)

    def _load_tail(self, keep: int) -> None:
        try:
            with self.path.open(encoding="utf-8") as f:
                lines = deque(f, maxlen=keep)
        except FileNotFoundError:
            return
        for line in lines:
            try:
                self._recent.append(json.loads(line))
            except json.JSONDecodeError:
                continue

    async def write(self, actor: str, action: str, target: str, detail: dict[str, Any], *,
                    ok: bool = True, error: str | None = None) -> dict[str, Any]:
        entry = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "actor": actor,
                 "action": action, "target": target, "detail": detail, "ok": ok,
                 "error": error}
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line)
            self._recent.append(entry)
        return entry

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def recent(self, n: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        return list(reversed(self._recent))[:n]
