"""Unmasking caller details, always on the record.

Views show the caller's number masked (``138****8000``); anyone who needs it in full (the
callback dialler, an agent calling back, a supervisor verifying identity) asks the store by
name and with a reason, and every such reveal is a row of the audit log: who, when, which
case, why. Who may ask is the caller's (web layer's) decision; the store guarantees that no one
sees a number without leaving that row. The audit rows hold no caller details themselves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.core import StoreCore, aware
from cases.errors import CaseNotFound
from cases.models import AuditEntry, Case
from cases.schemas import AuditRecord
from cases.text import check_actor, check_storable

REVEAL_NUMBER = "reveal_number"
REVEAL_EMAIL = "reveal_email"


class AuditMixin(StoreCore):
    async def reveal_number(self, number: str, *, actor: str, reason: str) -> str | None:
        """The caller's plain number of case ``number`` (None when the caller withheld it),
        after writing the audit row in the same transaction: no row, no number."""
        return await self._reveal(number, REVEAL_NUMBER, actor, reason)

    async def reveal_email(self, number: str, *, actor: str, reason: str) -> str | None:
        """The submitter's e-mail address (Open311, web forms), audited like a number."""
        return await self._reveal(number, REVEAL_EMAIL, actor, reason)

    async def _reveal(self, number: str, action: str, actor: str, reason: str) -> str | None:
        actor = check_actor(actor)
        if not reason or not reason.strip():
            raise ValueError(f"{action} needs a reason: unmasking is audited")
        check_storable("reason", reason)

        async def apply(s: AsyncSession) -> bytes | None:
            q = select(Case.caller_number_enc, Case.caller_email_enc).where(Case.number == number)
            row = (await s.execute(q)).first()
            if row is None:
                raise CaseNotFound(f"no case {number}")
            s.add(AuditEntry(at=self._now(), actor=actor, action=action,
                             case_number=number, reason=reason.strip()))
            blob: bytes | None = row[0] if action == REVEAL_NUMBER else row[1]
            return blob

        blob = await self._write(action, apply)
        if blob is None:
            return None
        return (self._cipher.decrypt(blob) if action == REVEAL_NUMBER
                else self._cipher.decrypt_email(blob))

    async def audit_log(
        self,
        *,
        case_number: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Audit rows matching the filters, newest first; ``until`` is exclusive."""
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if case_number is not None:
            q = q.where(AuditEntry.case_number == case_number)
        if actor is not None:
            q = q.where(AuditEntry.actor == actor)
        if since is not None:
            q = q.where(AuditEntry.at >= aware("since", since))
        if until is not None:
            q = q.where(AuditEntry.at < aware("until", until))
        async with self._reading("audit_log") as s:
            return [AuditRecord(at=e.at, actor=e.actor, action=e.action,
                                case_number=e.case_number, reason=e.reason)
                    for e in (await s.execute(q)).scalars()]
