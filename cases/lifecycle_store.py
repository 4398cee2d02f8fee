"""Applying lifecycle transitions (``cases.lifecycle``) to stored cases.

Concurrency: the case row (and, for a merge, the master's) is locked before its state is read
(``SELECT … FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so two agents acting on one
case at once are serialised and the second sees the first's result: two dispatches of one
accepted case give one dispatch and one ``InvalidTransition``, never two. The ``version``
column adds an optimistic check on top: a client that passes the ``expected_version`` it
displayed gets ``ConcurrentUpdate`` if anyone changed the case since.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cases.codes import CaseStatus, EventKind
from cases.departments_store import DepartmentsMixin
from cases.errors import CaseNotFound, ConcurrentUpdate
from cases.lifecycle import HANDOVER_ACTIONS, Action, Step, plan
from cases.models import Case
from cases.schemas import CaseView
from cases.text import check_actor, check_storable


class LifecycleMixin(DepartmentsMixin):
    async def transition(
        self,
        number: str,
        action: Action | str,
        *,
        actor: str,
        reason: str | None = None,
        department: str | None = None,
        satisfaction: int | None = None,
        master: str | None = None,
        expected_version: int | None = None,
    ) -> CaseView:
        """Move case ``number`` along the lifecycle; one ``transition`` event on its timeline
        (with actor and reason), plus ``merged_in`` on the master of a merge.

        Raises ``InvalidTransition`` (not allowed from the current state), ``ValueError``
        (missing or meaningless argument), ``UnknownDepartment``, ``CaseNotFound`` and
        ``ConcurrentUpdate`` (``expected_version`` is not the case's version)."""
        actor = check_actor(actor)
        for name, value in (("reason", reason), ("department", department), ("master", master)):
            check_storable(name, value)

        async def apply(s: AsyncSession) -> CaseView:
            locked = await self._lock_numbers(s, number, *([master] if master else []))
            case = locked.get(number)
            if case is None:
                raise CaseNotFound(f"no case {number}")
            if expected_version is not None and case.version != expected_version:
                raise ConcurrentUpdate(f"case {number} is at version {case.version}, not "
                                       f"{expected_version}: reload it and try again")
            await self._transition_locked(s, locked, number, action, actor=actor,
                                          reason=reason, department=department,
                                          satisfaction=satisfaction, master=master)
            await s.flush()
            return self._view(case)

        return await self._write("transition", apply)

    async def _transition_locked(
        self, s: AsyncSession, locked: dict[str, Case], number: str, action: Action | str, *,
        actor: str, reason: str | None, department: str | None = None,
        satisfaction: int | None = None, master: str | None = None,
    ) -> None:
        """``transition`` on rows the caller has locked (``number``, and ``master`` if any),
        inside the caller's transaction: whatever it refuses rolls back the caller's writes
        too."""
        case = locked[number]
        step = plan(number, case.status, action, current_department=case.department,
                    department=department, reason=reason, satisfaction=satisfaction,
                    master=master, unsatisfied_below=self._config.unsatisfied_below)
        if step.action in HANDOVER_ACTIONS:
            assert department is not None  # plan() checked
            await self._require_department(s, department)
        master_case = self._check_master(locked, step, number, master)
        await self._apply(s, case, step, actor=actor, reason=reason, department=department,
                          satisfaction=satisfaction, master_case=master_case)

    @staticmethod
    def _check_master(locked: dict[str, Case], step: Step, number: str,
                      master: str | None) -> Case | None:
        if step.action is not Action.MERGE:
            return None
        assert master is not None
        found = locked.get(master)
        if found is None:
            raise CaseNotFound(f"merge {number}: no master case {master}")
        if found.status == CaseStatus.MERGED:
            # Merges never chain, so "which case is the real one" is always one step away.
            raise ValueError(f"merge {number}: {master} is itself merged into "
                             f"{found.merged_into}; merge into that case")
        return found

    async def _apply(self, s: AsyncSession, case: Case, step: Step, *, actor: str,
                     reason: str | None, department: str | None, satisfaction: int | None,
                     master_case: Case | None) -> None:
        now = self._now()
        detail: dict[str, object] = {"action": step.action.value, "from": step.source.value,
                                     "to": step.target.value, "reason": reason}
        case.status, case.updated_at = step.target.value, now
        if step.action in HANDOVER_ACTIONS:
            detail["department"] = department
            if case.department is not None and step.action is Action.REASSIGN:
                detail["previous_department"] = case.department
            case.department = department
        elif step.action is Action.RETURN:
            # The department gave it back: it no longer has it; the event keeps who it was.
            detail["department"], case.department = case.department, None
        elif step.action is Action.REPLY:
            case.replied_at = now
        elif step.action is Action.REVISIT:
            case.satisfaction = satisfaction
            detail["satisfaction"] = satisfaction
        elif step.action is Action.MERGE:
            assert master_case is not None
            case.merged_into, detail["master"] = master_case.number, master_case.number
        if step.target in (CaseStatus.CLOSED, CaseStatus.MERGED):
            case.closed_at = now
        if step.reopened:
            case.reopen_count = (case.reopen_count or 0) + 1
            case.closed_at = None
            detail["reopen_count"] = case.reopen_count
        self._event(s, case, EventKind.TRANSITION, actor, now, detail)
        # A hand-over gives the department its full time; so does a reopened case, which is
        # handled anew (supervision sees it as reopened all the same).
        if step.action in HANDOVER_ACTIONS or step.reopened:
            self._set_deadline(s, case, now, actor, now)
        if master_case is not None:
            master_case.updated_at = now
            self._event(s, master_case, EventKind.MERGED_IN, actor, now,
                        {"duplicate": case.number, "reason": reason})
            # A second report of the same problem is a reason to handle it sooner.
            master_case.priority = (master_case.priority or 0) + 1
