"""Editing a case by its number: what the console's case form saves.

The version the client displayed is compared inside the write's transaction, after the case
row is locked (``SELECT … FOR UPDATE`` on PostgreSQL, the write lock on SQLite). Comparing it
on a separate read before the write would let two saves based on the same version both pass
the check, the second silently overwriting the first (a lost update); here the second waits
for the first's commit, sees the new version and gets ``ConcurrentUpdate``.

The form's fields and its lifecycle action (close, dispatch …) are one transaction too: an
action the lifecycle refuses (an unknown department, a state that does not allow it) rolls the
field changes back with it, so a refused save changes nothing.

A closed (办结) or merged case keeps its fields: its record is what the closing decided and
what the caller was told; a real change to it is refused (``CaseClosed``), the lifecycle's
reopen (重办) being the way to handle it again. Saving the values it already has is no change,
so a form submitted twice is not refused. The call path (``update_call_case``) still records
the call's own facts (agent, talk time) on a case closed during the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cases.callpath import CallPathMixin
from cases.errors import CaseClosed, ConcurrentUpdate
from cases.lifecycle import FINAL_STATES, Action
from cases.lifecycle_store import LifecycleMixin
from cases.schemas import CaseChanges, CaseView
from cases.text import check_actor, check_storable


class EditMixin(CallPathMixin, LifecycleMixin):
    async def edit_case(
        self,
        number: str,
        changes: Mapping[str, Any],
        *,
        actor: str,
        expected_version: int | None = None,
        base: Mapping[str, Any] | None = None,
        action: Action | str | None = None,
        reason: str | None = None,
        department: str | None = None,
    ) -> CaseView:
        """Set fields of case ``number`` (names and types of ``CaseChanges``), each real
        change one event, as ``update_call_case`` does for the call path; then, if given,
        apply ``action`` (with ``reason`` and ``department``) as ``transition`` does.

        ``base``: the value each changed field had when the editor read the case. A field
        someone else changed since is not overwritten: ``ConcurrentUpdate`` names it. Unlike
        ``expected_version``, writes to other fields (the call path's, another editor's) do
        not refuse the edit, so a form can save while its call goes on.

        Raises ``CaseNotFound``, ``ConcurrentUpdate`` (``expected_version`` is not the case's
        version when the row is locked, or a field of ``base`` changed meanwhile),
        ``CaseClosed`` (a change to a closed case),
        ``ValueError`` (a bad field or value) and what
        ``transition`` raises; whatever is raised, nothing was written."""
        actor = check_actor(actor)
        check_storable("reason", reason)
        check_storable("department", department)
        values = CaseChanges.parse(dict(changes))
        seen = CaseChanges.parse({f: v for f, v in (base or {}).items() if f in values})

        async def apply(s: AsyncSession) -> CaseView:
            case = await self._require_number(s, number)
            if expected_version is not None and case.version != expected_version:
                raise ConcurrentUpdate(f"case {number} is at version {case.version}, not "
                                       f"{expected_version}: reload it and try again")
            for f, was in seen.items():
                now = getattr(case, f)
                if not _same(now, was) and not _same(now, values[f]):
                    raise ConcurrentUpdate(f"{f} of case {number} was changed meanwhile (to "
                                           f"{_shown(now)}): reload it and try again")
            if case.status in FINAL_STATES and any(
                    getattr(case, f) != v for f, v in values.items()):
                raise CaseClosed(f"case {number} is {case.status}: its fields are no longer "
                                 "edited; reopen it to handle it again")
            await self._change_fields(s, case, values, actor)
            if action is not None:
                # After the fields: a dispatch's deadline follows the type and urgency just set.
                await self._transition_locked(s, {number: case}, number, action, actor=actor,
                                              reason=reason, department=department)
            await s.flush()
            return self._view(case)

        return await self._write("edit_case", apply)


def _same(a: Any, b: Any) -> bool:
    # An empty text field reads back as "" from a form and as NULL from the row.
    return (a if a != "" else None) == (b if b != "" else None)


def _shown(value: Any) -> str:
    """A field's value in an error message: short, and not the whole description."""
    text = "nothing" if value is None else repr(str(getattr(value, "value", value)))
    return text if len(text) <= 60 else text[:57] + "...'"
