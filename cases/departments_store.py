"""Departments in the store: seed loading (upsert), look-ups, the dispatch check."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.core import StoreCore
from cases.departments import (
    DepartmentKind,
    DepartmentSeed,
    DepartmentView,
    level_of,
    order_seeds,
    read_seed_file,
)
from cases.errors import UnknownDepartment
from cases.models import Department


def _view(d: Department) -> DepartmentView:
    return DepartmentView(code=d.code, name=d.name, kind=d.kind, parent=d.parent_code,
                          level=level_of(_kind(d.kind)), active=d.active)


def _kind(value: str) -> DepartmentKind | str:
    try:
        return DepartmentKind(value)
    except ValueError:
        return value  # written by a newer version


class DepartmentsMixin(StoreCore):
    async def load_departments(self, seeds: Iterable[DepartmentSeed] | Path | str) -> int:
        """Insert or update departments (by code) from seeds or a seed file, all or nothing.
        Departments not in the seeds are left as they are. Returns how many were written."""
        items = read_seed_file(Path(seeds)) if isinstance(seeds, Path | str) else list(seeds)

        async def apply(s: AsyncSession) -> int:
            rows = {d.code: d for d in (await s.execute(select(Department))).scalars()}
            generations = order_seeds(items, {c: (_kind(d.kind), d.parent_code)
                                              for c, d in rows.items()})
            written = 0
            for generation in generations:  # parents flushed before their children
                for seed in generation:
                    row = rows.get(seed.code)
                    if row is None:
                        row = Department(code=seed.code)
                        s.add(row)
                    row.name, row.kind = seed.name, seed.kind.value
                    row.parent_code, row.active = seed.parent, seed.active
                    written += 1
                await s.flush()
            return written

        return await self._write("load_departments", apply)

    async def department(self, code: str) -> DepartmentView | None:
        async with self._reading("department") as s:
            d = await self._department(s, code)
            return None if d is None else _view(d)

    async def departments(
        self, *, kind: DepartmentKind | str | None = None, parent: str | None = None,
        include_inactive: bool = False,
    ) -> list[DepartmentView]:
        """Departments by code, optionally only one kind or the children of one parent."""
        q = select(Department).order_by(Department.code)
        if kind is not None:
            q = q.where(Department.kind == str(kind))
        if parent is not None:
            q = q.where(Department.parent_code == parent)
        if not include_inactive:
            q = q.where(Department.active.is_(True))
        async with self._reading("departments") as s:
            return [_view(d) for d in (await s.execute(q)).scalars()]

    async def department_path(self, code: str) -> list[DepartmentView]:
        """The department and its ancestors, root first (e.g. 上海市 › 黄浦区 › 南京东路街道)."""
        path: list[DepartmentView] = []
        async with self._reading("department_path") as s:
            d = await self._department(s, code)
            if d is None:
                raise UnknownDepartment(f"no department {code!r}")
            while d is not None and len(path) < 64:  # the loader forbids cycles; be safe
                path.append(_view(d))
                d = None if d.parent_code is None else await self._department(s, d.parent_code)
        return path[::-1]

    @staticmethod
    async def _department(s: AsyncSession, code: str) -> Department | None:
        q = select(Department).where(Department.code == code)
        return (await s.execute(q)).scalar_one_or_none()

    async def _require_department(self, s: AsyncSession, code: str) -> Department:
        d = await self._department(s, code)
        if d is None:
            raise UnknownDepartment(f"no department {code!r}: load it first "
                                    "(CaseStore.load_departments)")
        if not d.active:
            raise UnknownDepartment(f"department {code!r} ({d.name}) is inactive")
        return d
