"""The 回访 survey placed by the service itself, for every case a department has replied to.

Every ``check_s`` (within the calling ``hours``), the replied cases whose reply is at least
``after_s`` old are called, oldest reply first, at most ``per_check`` per look. The attempts
are counted from the audit log (each survey call unmasks the citizen's number under the actor
``ivr-survey``), so a restart neither forgets nor repeats them, and a second service on the
same store sees them too; only the attempts since the latest reply count (a case reopened
and replied again is surveyed afresh). A citizen not reached (no answer, no valid key) is called again
``retry_s`` after the last attempt; after ``attempts`` calls, or at once when the caller's
number was withheld, the case is closed without the callback, with the reason, which is what
supervision (督办) reviews. The answered call itself is the survey session's (``ivr.session``):
it records the score and revisits or reopens the case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cases import Action
from cases.audit import REVEAL_NUMBER
from ivr.menus.hours import OpeningHours
from ivr.menus.model import SurveyCallConfig
from ivr.menus.survey import ACTOR, Placed, SurveyDialer

log = logging.getLogger("hotline.survey")

REPLIED = "replied"


class ScheduleStore(Protocol):
    """What the scheduler reads and writes of ``cases.CaseStore``."""

    async def find_cases(self, *, statuses: Collection[str] | None = None,
                         limit: int = 1000) -> list[Any]: ...
    async def audit_log(self, *, case_number: str | None = None, actor: str | None = None,
                        since: datetime | None = None, limit: int = 100) -> list[Any]: ...
    async def transition(self, number: str, action: Any, *, actor: str,
                         reason: str | None = None) -> Any: ...


class SurveyScheduler:
    def __init__(self, store: ScheduleStore, dialer: SurveyDialer, cfg: SurveyCallConfig,
                 timezone: str, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
                 ) -> None:
        self._store = store
        self._dialer = dialer
        self._cfg = cfg
        self._hours = OpeningHours.of(cfg.hours, (), (), timezone)
        self._now = now
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="survey-scheduler")
            log.info("survey calls (回访) placed automatically: %s after the reply, within %s",
                     timedelta(seconds=self._cfg.after_s), ", ".join(self._cfg.hours))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as e:  # noqa: BLE001 - store or link down: try at the next look
                log.warning("survey calls: this look failed (%s); next in %.0f s", e,
                            self._cfg.check_s)
            await asyncio.sleep(self._cfg.check_s)

    async def check(self) -> list[str]:
        """One look: place the survey calls that are due; returns their case numbers."""
        now = self._now()
        if not self._hours.is_open(now) or not self._dialer.ready:
            return []
        cfg = self._cfg
        due_before = now - timedelta(seconds=cfg.after_s)
        replied = [c for c in await self._store.find_cases(statuses=[REPLIED], limit=5000)
                   if (c.replied_at or c.updated_at) <= due_before]
        replied.sort(key=lambda c: c.replied_at or c.updated_at)
        placed: list[str] = []
        for case in replied:
            if len(placed) >= cfg.per_check:
                break
            # This reply's attempts only: a case reopened and replied again starts afresh.
            replied_at = case.replied_at or case.updated_at
            tries = [a for a in await self._store.audit_log(
                case_number=case.number, actor=ACTOR, since=replied_at, limit=100)
                if a.action == REVEAL_NUMBER]
            if tries and now - tries[0].at < timedelta(seconds=cfg.retry_s):
                continue                       # newest first: the last attempt is recent
            if len(tries) >= cfg.attempts:
                await self._close(case.number, f"回访 callback survey: citizen not reached "
                                                f"in {len(tries)} calls")
                continue
            result = await self._dialer.call(case.number)
            if result is Placed.WITHHELD:
                await self._close(case.number, "回访 callback survey impossible: the caller's "
                                               "number is withheld")
            elif result:
                placed.append(case.number)
        return placed

    async def _close(self, number: str, reason: str) -> None:
        await self._store.transition(number, Action.CLOSE, actor=ACTOR, reason=reason)
        log.info("case %s closed without the survey: %s", number, reason)
