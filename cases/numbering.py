"""Case numbers: ``YYYYMMDD`` (centre-local date) + 6-digit daily sequence.

The sequence comes from one counter row per day, bumped with a single upsert::

    INSERT INTO case_counters (day, last) VALUES (:day, <seed>)
    ON CONFLICT (day) DO UPDATE SET last = case_counters.last + 1
    RETURNING last

inside the transaction that also inserts the case. On PostgreSQL the upsert takes the row lock,
so concurrent writers queue on it until the first commits; on SQLite the whole database is
write-locked (``BEGIN IMMEDIATE``). Either way a rolled-back case rolls its number back, so the
sequence has no gaps. A ``SEQUENCE`` would be faster but is neither gap-free nor per-day.

``<seed>`` is the day's highest existing number + 1 rather than 1, so a lost or deleted counter
row (a restore, a hand edit) resumes after the cases that exist instead of colliding with them.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cases.errors import NumberingExhausted
from cases.models import Case, CaseCounter

SEQ_DIGITS = 6
SEQ_MAX = 10**SEQ_DIGITS - 1


def local_day(at: datetime, tz: ZoneInfo) -> date:
    """The centre's calendar day of an instant: a call at 23:30 UTC is "tomorrow" in Shanghai."""
    return at.astimezone(tz).date()


def day_key(day: date) -> str:
    return day.strftime("%Y%m%d")


def format_number(day: date, seq: int) -> str:
    return f"{day_key(day)}{seq:0{SEQ_DIGITS}d}"


def day_range(day: date) -> tuple[str, str]:
    """Lowest and highest possible number of a day, for index range scans."""
    return format_number(day, 0), format_number(day, SEQ_MAX)


async def allocate_number(session: AsyncSession, day: date, dialect: str) -> str:
    """Next number of ``day``; call inside the transaction that inserts the case.

    ``dialect`` is "postgresql" or "sqlite": both spell the upsert alike, but SQLAlchemy builds
    it from the dialect's own ``insert``."""
    lo, hi = day_range(day)
    seed = (
        select(func.coalesce(cast(func.substr(func.max(Case.number), 9), Integer), 0) + 1)
        .where(Case.number.between(lo, hi))
        .scalar_subquery()
    )
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = (
        insert(CaseCounter)
        .values(day=day_key(day), last=seed)
        .on_conflict_do_update(index_elements=[CaseCounter.day],
                               set_={"last": CaseCounter.last + 1})
        .returning(CaseCounter.last)
    )
    seq = (await session.execute(upsert)).scalar_one()
    if seq > SEQ_MAX:
        raise NumberingExhausted(f"more than {SEQ_MAX} cases on {day.isoformat()}")
    return format_number(day, seq)
