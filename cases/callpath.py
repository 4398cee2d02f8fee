"""The live call path: a case opened when the call starts, updated at each step, finished at
hang-up. Signatures are relied on by ``ivr.session`` and ``ivr.case_recorder``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession

from cases.callbacks import CallbacksMixin
from cases.codes import CALLBACK_OUTCOMES, CaseStatus, EventKind, Outcome, Urgency
from cases.core import aware, jsonable
from cases.errors import CaseStoreError
from cases.models import Case
from cases.numbering import allocate_number, local_day
from cases.repeat import RepeatMixin
from cases.schemas import CallStart, CaseChanges, CaseView
from cases.text import check_actor

# Fields whose change re-computes the deadline (unless the same update sets one explicitly).
_DEADLINE_INPUTS = frozenset({"case_type", "urgency"})

log = logging.getLogger(__name__)


class DuplicateCreate(Exception):
    """Another writer created the case for this call or submission between our check and our
    insert (PostgreSQL); the loser's transaction, number included, is rolled back."""


class CallPathMixin(RepeatMixin, CallbacksMixin):
    async def open_call_case(self, start: CallStart) -> CaseView:
        """The case of this call, created on first sight. Calling it again for the same
        (node, call_id), e.g. after an AMI reconnect, returns the existing case unchanged."""
        return await self._create_once(
            "open_call_case", lambda s: self._open_in(s, start), start.node, start.call_id)

    async def _create_once(self, what: str, create: Callable[[AsyncSession], Awaitable[CaseView]],
                           node: str, call_id: str) -> CaseView:
        try:
            return await self._write(what, create)
        except DuplicateCreate:
            # A concurrent writer won: its case is committed, ours rolled back together with
            # its number, so the sequence stays gap-free.
            async with self._reading(what) as s:
                found = await self._by_call(s, node, call_id)
                if found is None:
                    raise CaseStoreError(f"{what}: conflicting insert but no case") from None
                return self._view(found)

    async def _insert(self, s: AsyncSession, case: Case) -> None:
        s.add(case)
        try:
            await s.flush()
        except exc.IntegrityError as e:
            raise DuplicateCreate() from e

    async def _open_in(self, s: AsyncSession, start: CallStart) -> CaseView:
        existing = await self._by_call(s, start.node, start.call_id)
        if existing is not None:
            return self._view(existing)
        now = self._now()
        created_at = start.started_at.astimezone(UTC) if start.started_at else now
        number = await allocate_number(s, local_day(created_at, self._tz), self.dialect)
        plain = start.caller_number
        case = Case(
            number=number, node=start.node, call_id=start.call_id, channel=start.channel,
            caller_number_enc=self._cipher.encrypt(plain) if plain else None,
            caller_number_hash=self._cipher.lookup_hash(plain) if plain else None,
            caller_name=start.caller_name, dnid=start.dnid, locale=start.locale,
            urgency=Urgency.NORMAL.value, ivr_path=[], status=CaseStatus.ACCEPTED.value,
            created_at=created_at, updated_at=now, reopen_count=0, repeat_count=0, priority=0,
        )
        # The untyped rule until the agent or classifier gives the type: never no deadline.
        self._set_deadline(s, case, created_at, "ivr", now, record=False)
        await self._insert(s, case)
        # The caller number stays out of the timeline: events are read more widely than cases.
        self._event(s, case, EventKind.CREATED, "ivr", now, {
            "node": start.node, "call_id": start.call_id, "channel": start.channel,
            "dnid": start.dnid, "locale": start.locale, "deadline": jsonable(case.deadline),
        })
        return self._view(case)

    async def update_call_case(
        self, node: str, call_id: str, *, actor: str = "ivr", **changes: Any
    ) -> CaseView:
        """Set fields while the call goes on (see ``CaseChanges`` for names and types).

        Each field that really changes is one timeline event; setting a field to the value it
        has records nothing, so a retried update does not clutter the timeline. A new type or
        urgency re-computes the deadline (unless ``deadline`` is given too); a new topic looks
        for the caller's earlier case on it (repeat caller)."""
        values = CaseChanges.parse(changes)
        actor = check_actor(actor)

        async def apply(s: AsyncSession) -> CaseView:
            case = await self._require_by_call(s, node, call_id)
            await self._change_fields(s, case, values, actor)
            await s.flush()
            return self._view(case)

        return await self._write("update_call_case", apply)

    async def _change_fields(self, s: AsyncSession, case: Case, values: dict[str, Any],
                             actor: str) -> set[str]:
        """Apply ``CaseChanges.parse`` output to a locked case (one event per real change, the
        deadline and the repeat link follow); returns the names of the fields that changed."""
        now = self._now()
        changed: set[str] = set()
        for field, value in values.items():
            if getattr(case, field) == value:
                continue
            setattr(case, field, value)
            case.updated_at = now
            changed.add(field)
            self._event(s, case, EventKind.CHANGED, actor, now,
                        {"field": field, "value": jsonable(value)})
        if changed & _DEADLINE_INPUTS and "deadline" not in values:
            self._set_deadline(s, case, case.deadline_from or case.created_at, actor, now)
        if "topic" in changed:
            await self._link_repeat(s, case, actor, now)
        return changed

    async def finish_call(
        self,
        node: str,
        call_id: str,
        outcome: Outcome | str,
        ended_at: datetime,
        wait_s: float | None = None,
        talk_s: float | None = None,
        *,
        actor: str = "ivr",
    ) -> CaseView:
        """Record how the call ended. An abandoned call (or a requested callback) leaves a
        callback task (回拨) on the timeline, due ``callback_within`` after the hang-up (or at
        the next opening of the calling hours).

        The first finish wins: Asterisk reports a hang-up per channel and a reconnect can
        replay one, so later finishes of the same call return the case unchanged."""
        result = Outcome(outcome)
        actor = check_actor(actor)
        aware("ended_at", ended_at)
        for name, v in (("wait_s", wait_s), ("talk_s", talk_s)):
            if v is not None and v < 0:
                raise ValueError(f"{name} must be >= 0, got {v}")

        async def apply(s: AsyncSession) -> CaseView:
            case = await self._require_by_call(s, node, call_id)
            if case.ended_at is not None:
                return self._view(case)
            now = self._now()
            case.outcome, case.ended_at, case.updated_at = result.value, ended_at.astimezone(UTC), now
            if wait_s is not None:
                case.wait_s = float(wait_s)
            if talk_s is not None:
                case.talk_s = float(talk_s)
            self._event(s, case, EventKind.CALL_ENDED, actor, now, {
                "outcome": result.value, "ended_at": jsonable(case.ended_at),
                "wait_s": case.wait_s, "talk_s": case.talk_s,
            })
            if result in CALLBACK_OUTCOMES:
                due = self._callback_due(ended_at)
                self._event(s, case, EventKind.CALLBACK_TASK, "system", now,
                            {"reason": result.value, "due": jsonable(due), "state": "open"})
            elif result is Outcome.ANSWERED:
                settled = await self._settle_by_later_call(s, case, now)
                if settled:
                    log.info("case %s: the caller got through; callbacks of %s settled",
                             case.number, ", ".join(settled))
            await s.flush()
            return self._view(case)

        return await self._write("finish_call", apply)
