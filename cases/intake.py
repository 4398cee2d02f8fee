"""Cases that do not come from a call: Open311 (GeoReport v2), web forms, apps.

They get a number from the same daily sequence, the same deadlines, repeat-caller linking and
lifecycle as phone cases. ``node`` holds the channel and ``call_id`` the submission id, so the
(node, call_id) unique constraint that makes call cases idempotent does the same here.
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession

from cases.callpath import CallPathMixin
from cases.codes import CaseStatus, EventKind
from cases.core import jsonable
from cases.models import Case
from cases.numbering import allocate_number, local_day
from cases.schemas import CaseIntake, CaseView


class IntakeMixin(CallPathMixin):
    async def open_case(self, intake: CaseIntake) -> CaseView:
        """Create the case of a submission; submitting the same (channel, submission_id)
        again returns the case created the first time, unchanged."""
        return await self._create_once("open_case", lambda s: self._intake_in(s, intake),
                                       intake.channel, intake.submission_id)

    async def _intake_in(self, s: AsyncSession, intake: CaseIntake) -> CaseView:
        existing = await self._by_call(s, intake.channel, intake.submission_id)
        if existing is not None:
            return self._view(existing)
        now = self._now()
        created_at = intake.submitted_at.astimezone(UTC) if intake.submitted_at else now
        number = await allocate_number(s, local_day(created_at, self._tz), self.dialect)
        phone, email = intake.caller_number, intake.caller_email
        case = Case(
            number=number, node=intake.channel, call_id=intake.submission_id,
            channel=intake.channel,
            caller_number_enc=self._cipher.encrypt(phone) if phone else None,
            caller_number_hash=self._cipher.lookup_hash(phone) if phone else None,
            caller_email_enc=self._cipher.encrypt_email(email) if email else None,
            caller_name=intake.caller_name, locale=intake.locale,
            case_type=None if intake.case_type is None else intake.case_type.value,
            topic=intake.topic, urgency=intake.urgency.value, district=intake.district,
            description=intake.description, address=intake.address, lat=intake.lat,
            lon=intake.lon, media_url=intake.media_url, ivr_path=[],
            status=CaseStatus.ACCEPTED.value, created_at=created_at, updated_at=now,
            reopen_count=0, repeat_count=0, priority=0,
        )
        self._set_deadline(s, case, created_at, intake.channel, now, record=False)
        await self._insert(s, case)
        # Like call cases: no caller details in the timeline.
        self._event(s, case, EventKind.CREATED, intake.channel, now, {
            "channel": intake.channel, "submission_id": intake.submission_id,
            "deadline": jsonable(case.deadline),
        })
        if case.topic is not None:
            await self._link_repeat(s, case, intake.channel, now)
        await s.flush()
        return self._view(case)
