"""Callbacks owed (回拨): the abandoned callers, the callers who pressed the queue's callback
key and the after-hours messages the centre must call back, and what came of each call back.

``finish_call`` leaves a ``callback_task`` event on the case (due ``callback_within`` after the
hang-up, within the calling hours: see below). A callback's state is the latest of its case's
callback events, so it needs no table or column of its own that would have to be kept in step
with the timeline:

* ``callback_task``: owed, due at the hang-up + ``callback_within``, nothing tried yet;
* ``callback_attempt`` (an operator called, no answer): still owed, due ``callback_within``
  after that attempt (from the attempt, not from the old due: calling again at once after a
  late first try would only ring an empty flat twice);
* ``callback_done`` (``reached`` or ``given_up``): settled, no longer listed.

The due time of an open callback is computed from real timestamps (the hang-up or the last
attempt) rather than read from the events' JSON text; it equals the ``due`` the events record,
which the same rule wrote (unless the calling hours have been changed since). The list is
ordered in SQL by that timestamp, which is the due order on both databases: a later hang-up
or attempt is never due earlier.

Settling is one write with the case row locked (``FOR UPDATE`` on PostgreSQL, the write lock
on SQLite), like every other write; its event carries the actor. The operator says how many
unanswered attempts they saw: two operators settling the same callback queue on the lock and
the second is refused (``ConcurrentUpdate``) rather than recording a second result. The same
operator sending the same result again (a retried request) gets the callback as it now is,
with nothing written twice.

A callback also settles itself when the citizen gets through: when a later call from the same
number, placed after the owed call ended, is answered by an agent (``finish_call``), each
callback still owed to that number is settled ``reached`` by ``system``, with a note naming the
case of the call that got through, so no operator rings a citizen who has just been served.
Withheld numbers never match.

Calling hours: the store's ``calling_hours`` (the service passes the hours the centre calls
citizens for 回访 surveys, ``ivr.survey.hours`` with its holidays and make-up workdays, read
in ``ivr.timezone``) move a due time that falls outside them to the next opening: with hours
09:00-20:00, a call abandoned at 23:00, or an unanswered attempt at 19:50, is due at 09:00 the
next open day, not overdue all night. Without calling hours (none configured) a callback is
due ``callback_within`` after the hang-up or attempt at any hour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy import case as when
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cases.codes import CallbackResult, EventKind
from cases.core import StoreCore, aware, jsonable
from cases.errors import CaseNotFound, ConcurrentUpdate
from cases.models import Case, CaseEvent
from cases.privacy import mask_number
from cases.text import check_actor, check_storable

NOTE_MAX = 500      # characters of an operator's note on a call back
OPEN = "open"       # ``Callback.state`` while owed; otherwise the result that settled it
_TASK, _ATTEMPT, _DONE = (EventKind.CALLBACK_TASK.value, EventKind.CALLBACK_ATTEMPT.value,
                          EventKind.CALLBACK_DONE.value)
_KINDS = (_TASK, _ATTEMPT, _DONE)
_TICK = timedelta(microseconds=1)   # the finest time both databases keep
_FAR = timedelta(days=3660)         # how far back ``callback_counts`` looks for an opening


@dataclass(frozen=True, slots=True)
class Callback:
    """One case's callback as the store sees it at ``now``."""

    number: str                 # the case
    caller_masked: str          # "" when the caller withheld the number: none to call
    reason: str                 # the call's outcome: "abandoned" or "callback" (key, message)
    due: datetime               # aware UTC
    overdue: bool               # open and due before the store's clock (or the ``now`` given)
    topic: str | None
    queue: str | None
    created_at: datetime        # the case's (the call's start)
    attempts: int               # unanswered calls back so far
    state: str                  # OPEN, or the ``CallbackResult`` that settled it
    settled_by: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackCounts:
    owed: int
    overdue: int


def _owed(pick: Callable[[Any, ColumnElement[datetime]], Sequence[Any]]
          ) -> tuple[Select[Any], ColumnElement[datetime]]:
    """The open callbacks: cases whose latest callback event (found through
    ``ix_case_events_kind``) is not ``callback_done``. ``pick(event, since)`` names the
    columns, ``since`` (returned too) being the time the due counts from: the hang-up or the
    last attempt."""
    latest = (select(CaseEvent.case_id, func.max(CaseEvent.id).label("last_id"))
              .where(CaseEvent.kind.in_(_KINDS)).group_by(CaseEvent.case_id)
              .subquery("latest_callback"))
    ev = aliased(CaseEvent, name="cb")
    since = when((ev.kind == _TASK, func.coalesce(Case.ended_at, ev.at)), else_=ev.at)
    return (select(*pick(ev, since)).select_from(Case)
            .join(latest, latest.c.case_id == Case.id).join(ev, ev.id == latest.c.last_id)
            .where(ev.kind != _DONE)), since


class CallbacksMixin(StoreCore):
    async def callbacks_owed(self, *, limit: int = 100, offset: int = 0,
                             now: datetime | None = None) -> list[Callback]:
        """The open callbacks, the one due first first (then by case), a page at a time."""
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be >= 1 and offset >= 0, got {limit}, {offset}")
        at = aware("now", now) if now is not None else self._now()
        q, since = _owed(lambda ev, _: (Case, ev))
        q = q.order_by(since, Case.id).limit(limit).offset(offset)
        async with self._reading("callbacks_owed") as s:
            return [self._callback(c, e, at) for c, e in (await s.execute(q)).all()]

    async def callback_counts(self, now: datetime | None = None) -> CallbackCounts:
        """How many callbacks are owed, and how many of them are overdue at ``now``."""
        at = aware("now", now) if now is not None else self._now()
        cutoff = self._overdue_before(at)   # due before ``at``: counted from before this
        q, _ = _owed(lambda ev, since: (
            func.count(), func.coalesce(func.sum(when((since < cutoff, 1), else_=0)), 0)))
        async with self._reading("callback_counts") as s:
            owed, overdue = (await s.execute(q)).one()
        return CallbackCounts(int(owed), int(overdue))

    def _overdue_before(self, at: datetime) -> datetime:
        """The ``since`` (hang-up or last attempt) before which an open callback is overdue
        at ``at``: one cutoff, so the count stays a single aggregate in SQL however many
        callbacks are owed. ``_callback_due`` never decreases as ``since`` grows, so "due
        before ``at``" holds exactly for the ``since`` values below a boundary; with calling
        hours that boundary is found by bisection on ``since`` (about 40 ``calling_hours``
        calls, to the microsecond the databases keep), not row by row."""
        hi = at - self._callback_within     # due >= since + within >= at: not overdue
        if self._calling_hours is None:
            return hi

        def overdue(since: datetime) -> bool:
            return self._callback_due(since) < at

        step = timedelta(days=1)
        lo = hi - step
        while not overdue(lo):      # closed for long before ``at`` (a night, a holiday week)
            if step > _FAR:
                return lo           # never open in years: no answer, count the oldest
            hi, step = lo, step * 2
            lo = hi - step
        while hi - lo > _TICK:      # overdue(lo) and not overdue(hi)
            mid = lo + (hi - lo) // 2
            lo, hi = (mid, hi) if overdue(mid) else (lo, mid)
        return hi

    async def callback(self, number: str, now: datetime | None = None) -> Callback | None:
        """Case ``number``'s callback, open or settled (None: it never owed one;
        ``CaseNotFound``: no such case)."""
        at = aware("now", now) if now is not None else self._now()
        async with self._reading("callback") as s:
            case = (await s.execute(select(Case).where(Case.number == number))
                    ).scalar_one_or_none()
            if case is None:
                raise CaseNotFound(f"no case {number}")
            ev = await self._latest_event(s, case)
            return None if ev is None else self._callback(case, ev, at)

    async def settle_callback(self, number: str, result: CallbackResult | str, *, actor: str,
                              note: str | None = None, seen_attempts: int | None = None,
                              now: datetime | None = None) -> Callback:
        """Record what calling back case ``number``'s caller came to: ``reached`` and
        ``given_up`` settle the callback, ``no_answer`` is an attempt that leaves it owed and
        due ``callback_within`` later. ``seen_attempts``: the unanswered attempts the operator
        saw; if the callback has changed since, ``ConcurrentUpdate`` (so does settling one
        that is settled already, unless it is this actor's same result again, which returns
        it unchanged). ``CaseNotFound`` when the case does not exist or owes no callback."""
        outcome = CallbackResult(result)
        actor = check_actor(actor)
        check_storable("note", note)
        note = (note or "").strip() or None
        if note is not None and len(note) > NOTE_MAX:
            raise ValueError(f"note is {len(note)} characters; at most {NOTE_MAX}")
        if seen_attempts is not None and seen_attempts < 0:
            raise ValueError(f"seen_attempts must be >= 0, got {seen_attempts}")
        at = aware("now", now) if now is not None else self._now()

        async def apply(s: AsyncSession) -> Callback:
            case = await self._require_number(s, number)    # locked: settles queue here
            ev = await self._latest_event(s, case)
            if ev is None:
                raise CaseNotFound(f"case {number} owes no callback")
            now_cb = self._callback(case, ev, at)
            if now_cb.state != OPEN:
                if ev.actor == actor and now_cb.state == outcome.value:
                    return now_cb       # the same request again: already done
                raise ConcurrentUpdate(
                    f"the callback of case {number} is already settled: {now_cb.state} by "
                    f"{ev.actor} at {ev.at.astimezone(self._tz):%Y-%m-%d %H:%M}")
            if seen_attempts is not None and seen_attempts != now_cb.attempts:
                if (outcome is CallbackResult.NO_ANSWER and ev.kind == _ATTEMPT
                        and ev.actor == actor and now_cb.attempts == seen_attempts + 1):
                    return now_cb       # this very attempt, sent again
                raise ConcurrentUpdate(
                    f"the callback of case {number} changed meanwhile: {now_cb.attempts} "
                    f"unanswered attempt(s) now, you saw {seen_attempts}; reload the list")
            detail: dict[str, Any] = {"reason": now_cb.reason}
            if outcome is CallbackResult.NO_ANSWER:
                after = dataclasses.replace(now_cb, attempts=now_cb.attempts + 1,
                                            due=self._callback_due(at), overdue=False)
                kind = EventKind.CALLBACK_ATTEMPT
                detail |= {"attempt": after.attempts, "due": jsonable(after.due)}
            else:
                after = dataclasses.replace(now_cb, state=outcome.value, overdue=False,
                                            settled_by=actor)
                kind = EventKind.CALLBACK_DONE
                detail |= {"result": outcome.value, "attempts": now_cb.attempts,
                           "due": jsonable(now_cb.due)}
            if note is not None:
                detail["note"] = note
            self._event(s, case, kind, actor, at, detail)
            return after

        return await self._write("settle_callback", apply)

    async def _settle_by_later_call(self, s: AsyncSession, case: Case, at: datetime
                                    ) -> list[str]:
        """``case``'s call was answered by an agent: the callbacks still owed to the same
        number on earlier cases are settled ``reached``. The numbers of those cases."""
        if case.caller_number_hash is None:
            return []
        has_task = (select(CaseEvent.id)
                    .where(CaseEvent.case_id == Case.id, CaseEvent.kind == _TASK).exists())
        # Calls that had ended when this one began: their callbacks were owed by then.
        q = select(Case.number).where(Case.caller_number_hash == case.caller_number_hash,
                                      Case.id != case.id, Case.ended_at <= case.created_at,
                                      has_task)
        earlier = list((await s.execute(q)).scalars())
        settled: list[str] = []
        # Locked like an operator's settle: whichever comes second sees the other's result.
        for number, other in (await self._lock_numbers(s, *earlier)).items():
            ev = await self._latest_event(s, other)
            if ev is None or ev.kind == _DONE:
                continue
            owed = self._callback(other, ev, at)
            self._event(s, other, EventKind.CALLBACK_DONE, "system", at, {
                "reason": owed.reason, "result": CallbackResult.REACHED.value,
                "attempts": owed.attempts, "due": jsonable(owed.due),
                "note": f"the caller got through on case {case.number}",
                "by_case": case.number})
            settled.append(number)
        return settled

    @staticmethod
    async def _latest_event(s: AsyncSession, case: Case) -> CaseEvent | None:
        q = (select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind.in_(_KINDS))
             .order_by(CaseEvent.id.desc()).limit(1))
        return (await s.execute(q)).scalar_one_or_none()

    def _callback(self, case: Case, ev: CaseEvent, at: datetime) -> Callback:
        detail = ev.detail or {}
        if ev.kind == _DONE:
            due = datetime.fromisoformat(str(detail["due"]))
            state, attempts, by = str(detail["result"]), int(detail.get("attempts", 0)), ev.actor
        else:
            # The rule the task and the attempts recorded their ``due`` with (see above).
            since = (case.ended_at or ev.at) if ev.kind == _TASK else ev.at
            due, state, by = self._callback_due(since), OPEN, None
            attempts = int(detail.get("attempt", 0)) if ev.kind == _ATTEMPT else 0
        plain = self._cipher.decrypt(case.caller_number_enc) if case.caller_number_enc else None
        return Callback(
            number=case.number, caller_masked=mask_number(plain),
            reason=str(detail.get("reason") or case.outcome or ""), due=due,
            overdue=state == OPEN and due < at, topic=case.topic, queue=case.queue,
            created_at=case.created_at, attempts=attempts, state=state, settled_by=by)
