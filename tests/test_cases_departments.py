"""Departments: the five-level tree plus agencies and companies, seed files, dispatch checks."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cases import CaseStore, DepartmentKind, DepartmentSeed, UnknownDepartment
from cases.departments import order_seeds, parent_allowed, read_seed_file
from tests.cases_fixtures import backend, pg_url, store  # noqa: F401

EXAMPLE = Path(__file__).parent.parent / "cases" / "seeds" / "departments.example.toml"
K = DepartmentKind


def seed(code: str, kind: str, parent: str | None = None) -> DepartmentSeed:
    return DepartmentSeed(code=code, name=f"dept {code}", kind=DepartmentKind(kind), parent=parent)


async def test_load_example_tree(store: CaseStore) -> None:
    assert await store.load_departments(EXAMPLE) == 15
    path = await store.department_path("330106004001")
    assert [(d.name, d.kind, d.level) for d in path] == [
        ("浙江省", "province", 1), ("杭州市", "city", 2), ("西湖区", "county", 3),
        ("西溪街道", "township", 4), ("西溪社区", "village", 5)]
    companies = {d.kind for d in await store.departments() if d.level is None}
    assert companies == {"agency", "water", "power", "gas", "heating", "telecom", "transit",
                         "hospital"}
    assert [d.code for d in await store.departments(kind="power")] == ["330100-power",
                                                                       "330106-power"]
    children = await store.departments(parent="330106")
    assert [d.code for d in children] == ["330106-urban", "330106004"]
    assert (await store.department("330100-water")).parent == "330100"  # type: ignore[union-attr]
    assert await store.department("nope") is None
    with pytest.raises(UnknownDepartment):
        await store.department_path("nope")


async def test_reload_updates_in_place(store: CaseStore, tmp_path: Path) -> None:
    await store.load_departments(EXAMPLE)
    data = {"departments": [
        {"code": "330106-urban", "name": "西湖区综合行政执法局", "kind": "agency",
         "parent": "330106"},
        {"code": "330106-urban-1", "name": "执法一中队", "kind": "agency",
         "parent": "330106-urban"},
        {"code": "330100-gas", "name": "杭州市燃气集团", "kind": "gas", "parent": "330100",
         "active": False},
    ]}
    path = tmp_path / "update.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert await store.load_departments(path) == 3
    assert (await store.department("330106-urban")).name == "西湖区综合行政执法局"  # type: ignore[union-attr]
    assert len(await store.departments()) == 15  # 16 stored, one inactive
    assert len(await store.departments(include_inactive=True)) == 16
    assert [d.code for d in await store.department_path("330106-urban-1")][-2:] == [
        "330106-urban", "330106-urban-1"]


async def test_bad_seeds_are_all_reported_and_nothing_written(store: CaseStore) -> None:
    await store.load_departments([seed("1", "province"), seed("2", "city", "1")])
    bad = [
        seed("3", "county", "2"),
        seed("4", "county", "3"),       # a county under a county
        seed("5", "township", "404"),   # unknown parent
        seed("6", "water", "7"),        # a water company under a gas company
        seed("7", "gas", "2"),
        seed("8", "agency", "6"),       # an agency under a company
        seed("3", "county", "2"),       # listed twice
    ]
    with pytest.raises(ValueError) as err:
        await store.load_departments(bad)
    msg = str(err.value)
    for expected in ("4: kind county cannot be under kind county (3)", "5: unknown parent 404",
                     "6: kind water cannot be under kind gas (7)",
                     "8: kind agency cannot be under kind water (6)", "3: listed twice"):
        assert expected in msg
    assert [d.code for d in await store.departments()] == ["1", "2"]


def test_cycles_and_generations() -> None:
    with pytest.raises(ValueError, match="lead back to itself"):
        order_seeds([seed("a", "agency", "b"), seed("b", "agency", "a")], {})
    # Re-parenting a stored department under its own child is a cycle too.
    with pytest.raises(ValueError, match="lead back"):
        order_seeds([seed("a", "agency", "b")], {"a": (K.AGENCY, None), "b": (K.AGENCY, "a")})
    gens = order_seeds([seed("v", "village", "t"), seed("t", "township", "c"),
                        seed("c", "county"), seed("w", "water", "c")], {})
    assert [sorted(s.code for s in g) for g in gens] == [["c"], ["t", "w"], ["v"]]


def test_parent_rules() -> None:
    assert parent_allowed(K.COUNTY, K.PROVINCE)  # districts of a municipality
    assert not parent_allowed(K.PROVINCE, K.CITY)
    assert parent_allowed(K.POWER, K.POWER) and not parent_allowed(K.POWER, K.WATER)
    assert parent_allowed(K.HOSPITAL, K.AGENCY) and not parent_allowed(K.AGENCY, K.HOSPITAL)


def test_seed_file_errors(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("x")
    with pytest.raises(ValueError, match=".toml or .json"):
        read_seed_file(tmp_path / "d.yaml")
    (tmp_path / "d.json").write_text('{"depts": []}')
    with pytest.raises(ValueError, match="departments"):
        read_seed_file(tmp_path / "d.json")
    (tmp_path / "e.json").write_text('[{"code": "1", "name": "x", "kind": "planet"}]')
    with pytest.raises(ValueError, match="kind"):
        read_seed_file(tmp_path / "e.json")
