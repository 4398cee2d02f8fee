"""Departments that cases are dispatched to, as a tree, and their seed files.

Kinds: the five levels of government (省 province, 市 city, 县区 county/district, 乡镇街道
township/subdistrict, 村社区 village/community), functional agencies under one of them (住建局,
城管局 …) and public-service companies (water, power, gas, heating, telecom, transit,
hospitals). Parent rules, checked when loading:

* a level of government hangs under a higher level, not necessarily the next one (districts of
  a municipality such as Shanghai sit directly under the province-level city; 省直管县);
* an agency under a level of government or another agency;
* a company under a level of government, an agency, or a company of the same kind (a power
  company's district branch);
* any of them may be a root: a city's hotline need not load its province.

Seed file (TOML, or JSON with the same shape)::

    [[departments]]
    code = "310101"       # stable key; the administrative division code fits well
    name = "黄浦区"
    kind = "county"
    parent = "310000"     # optional
    active = true         # optional; inactive ones stay for old cases, take no new ones
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class DepartmentKind(StrEnum):
    PROVINCE = "province"  # 省
    CITY = "city"          # 市
    COUNTY = "county"      # 县区
    TOWNSHIP = "township"  # 乡镇街道
    VILLAGE = "village"    # 村社区
    AGENCY = "agency"      # 职能部门
    WATER = "water"
    POWER = "power"
    GAS = "gas"
    HEATING = "heating"
    TELECOM = "telecom"
    TRANSIT = "transit"
    HOSPITAL = "hospital"


K = DepartmentKind
ADMIN_LEVELS: Mapping[DepartmentKind, int] = {K.PROVINCE: 1, K.CITY: 2, K.COUNTY: 3,
                                              K.TOWNSHIP: 4, K.VILLAGE: 5}
COMPANY_KINDS = frozenset({K.WATER, K.POWER, K.GAS, K.HEATING, K.TELECOM, K.TRANSIT,
                           K.HOSPITAL})


class DepartmentSeed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    kind: DepartmentKind
    parent: str | None = Field(default=None, min_length=1, max_length=64)
    active: bool = True


class DepartmentView(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    kind: DepartmentKind | str = Field(union_mode="left_to_right")
    parent: str | None
    level: int | None  # 1-5 for levels of government, None for agencies and companies
    active: bool


def level_of(kind: DepartmentKind | str) -> int | None:
    return ADMIN_LEVELS.get(kind) if isinstance(kind, DepartmentKind) else None


def parent_allowed(child: DepartmentKind, parent: DepartmentKind) -> bool:
    if child in ADMIN_LEVELS:
        return parent in ADMIN_LEVELS and ADMIN_LEVELS[parent] < ADMIN_LEVELS[child]
    if child is K.AGENCY:
        return parent in ADMIN_LEVELS or parent is K.AGENCY
    return parent in ADMIN_LEVELS or parent is K.AGENCY or parent is child


_SEEDS = TypeAdapter(list[DepartmentSeed])


def read_seed_file(path: Path) -> list[DepartmentSeed]:
    """Departments from a ``.toml`` or ``.json`` file (``departments`` = list of tables)."""
    raw: object
    if path.suffix.lower() == ".toml":
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    elif path.suffix.lower() == ".json":
        raw = json.loads(path.read_text(encoding="utf-8"))
    else:
        raise ValueError(f"{path}: department seed files are .toml or .json")
    items = raw.get("departments") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        # A file of the wrong shape is a bad value like any other bad seed: ValueError.
        raise ValueError(f"{path}: expected a list named 'departments'")  # noqa: TRY004
    return _SEEDS.validate_python(items)


def order_seeds(
    seeds: Iterable[DepartmentSeed],
    existing: Mapping[str, tuple[DepartmentKind | str, str | None]],
) -> list[list[DepartmentSeed]]:
    """Check the seeds against each other and against the departments already stored
    (``existing``: code -> (kind, parent)), and group them into generations, parents before
    children, so that each generation can be inserted at once.

    Raises ``ValueError`` listing every problem found, not just the first."""
    problems: list[str] = []
    by_code: dict[str, DepartmentSeed] = {}
    for seed in seeds:
        if seed.code in by_code:
            problems.append(f"{seed.code}: listed twice")
        by_code[seed.code] = seed
    tree: dict[str, tuple[DepartmentKind | str, str | None]] = {
        **existing, **{c: (s.kind, s.parent) for c, s in by_code.items()}}
    for seed in by_code.values():
        if seed.parent is None:
            continue
        parent_kind = tree[seed.parent][0] if seed.parent in tree else None
        if parent_kind is None:
            problems.append(f"{seed.code}: unknown parent {seed.parent}")
        elif not isinstance(parent_kind, DepartmentKind) or not parent_allowed(seed.kind,
                                                                               parent_kind):
            problems.append(f"{seed.code}: kind {seed.kind} cannot be under kind "
                            f"{parent_kind} ({seed.parent})")
        elif _cycles(seed.code, tree):
            problems.append(f"{seed.code}: its parents lead back to itself")
    if problems:
        raise ValueError("bad department seeds: " + "; ".join(problems))
    generations: list[list[DepartmentSeed]] = []
    pending = dict(by_code)
    while pending:  # terminates: no cycles, every parent known
        ready = [s for s in pending.values() if s.parent not in pending]
        generations.append(ready)
        for s in ready:
            del pending[s.code]
    return generations


def _cycles(code: str, tree: Mapping[str, tuple[DepartmentKind | str, str | None]]) -> bool:
    seen = {code}
    parent = tree[code][1]
    while parent is not None and parent in tree:
        if parent in seen:
            return True
        seen.add(parent)
        parent = tree[parent][1]
    return False
