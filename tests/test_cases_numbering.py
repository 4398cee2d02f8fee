"""Case numbers under concurrency: unique and gap-free on SQLite and PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cases import CallStart, CaseStore
from cases.numbering import format_number, local_day
from tests.cases_fixtures import Backend, backend, pg_url, store  # noqa: F401

T0 = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # noon in Shanghai
PREFIX = "20260310"


def start(i: int | str, at: datetime = T0) -> CallStart:
    return CallStart(node="n1", call_id=f"17000.{i}", caller_number="13800138000", started_at=at)


def expected(n: int, first: int = 1) -> list[str]:
    return [f"{PREFIX}{k:06d}" for k in range(first, first + n)]


async def test_500_concurrent_creates_no_duplicate_no_gap(store: CaseStore) -> None:
    views = await asyncio.gather(*(store.open_call_case(start(i)) for i in range(500)))
    numbers = sorted(v.number for v in views)
    assert len(set(numbers)) == 500
    assert numbers == expected(500)
    assert await store.count() == 500
    # Each call got its own case: the number a call was told is the one stored for it.
    for v in views[:50]:
        assert (await store.get_by_call("n1", v.call_id)) == v


async def test_two_stores_on_one_database(backend: Backend) -> None:
    """Two processes (two engines, two write locks) share the counter row."""
    async with backend.store() as a, backend.store() as b:
        views = await asyncio.gather(
            *(a.open_call_case(start(f"a{i}")) for i in range(60)),
            *(b.open_call_case(start(f"b{i}")) for i in range(60)),
        )
        assert sorted(v.number for v in views) == expected(120)


async def test_duplicates_racing_new_calls_leave_no_gap(store: CaseStore) -> None:
    # Every call announced three times at once, as after a flapping AMI link.
    views = await asyncio.gather(*(store.open_call_case(start(i % 40)) for i in range(120)))
    assert sorted({v.number for v in views}) == expected(40)
    assert await store.count() == 40


async def test_sequence_restarts_each_centre_day(store: CaseStore) -> None:
    days = [T0 - timedelta(days=1), T0, T0 + timedelta(days=1), T0]
    views = [await store.open_call_case(start(i, at)) for i, at in enumerate(days)]
    assert [v.number for v in views] == ["20260309000001", "20260310000001",
                                         "20260311000001", "20260310000002"]


async def test_lost_counter_row_resumes_after_existing_cases(
    store: CaseStore, backend: Backend
) -> None:
    for i in range(3):
        await store.open_call_case(start(i))
    await backend.raw("DELETE FROM case_counters")  # e.g. a partial restore
    v = await store.open_call_case(start(3))
    assert v.number == f"{PREFIX}000004"
    assert await backend.raw("SELECT day, last FROM case_counters") == [(PREFIX, 4)]


def test_format_and_local_day() -> None:
    assert format_number(date(2026, 11, 25), 42) == "20261125000042"
    shanghai = ZoneInfo("Asia/Shanghai")
    assert local_day(datetime(2026, 11, 24, 16, 0, tzinfo=UTC), shanghai) == date(2026, 11, 25)
    assert local_day(datetime(2026, 11, 24, 15, 59, tzinfo=UTC), shanghai) == date(2026, 11, 24)
