"""Routing scenarios in the format of ``../shared/scenarios/*.toml``.

The header of ``city-peak-hour.toml`` defines the semantics; this module only parses and
validates, and offers the variations the tests use to check that a policy generalises
(load scaled, a surge moved to another topic, other seeds).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PATIENCE_NEVER = 0.0  # patience_mean_s = 0: callers never abandon (erlang-c-check.toml)


class ScenarioError(ValueError):
    """A scenario file that does not follow the format, phrased for whoever wrote it."""


@dataclass(frozen=True, slots=True)
class Surge:
    start_s: float
    end_s: float
    factor: float


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    calls_per_hour: float
    surges: tuple[Surge, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """``count`` identical agents; ``skills`` maps topic -> Asterisk member penalty."""

    count: int
    skills: tuple[tuple[str, int], ...]

    @property
    def primary(self) -> tuple[str, ...]:
        return tuple(t for t, p in self.skills if p == 0)

    def label(self) -> str:
        return "+".join(f"{t}:{p}" for t, p in self.skills)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    duration_s: float
    warmup_s: float
    seeds: tuple[int, ...]
    handle_mean_s: float
    handle_cv: float
    handle_distribution: str          # "lognormal" (default) or "exponential"
    secondary_slowdown: float
    patience_mean_s: float            # 0 = never abandon
    service_level_s: float
    topics: tuple[TopicSpec, ...]
    agents: tuple[AgentGroup, ...]
    source: str = field(default="", compare=False)

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)

    @property
    def n_agents(self) -> int:
        return sum(g.count for g in self.agents)

    def offered_erlangs(self) -> float:
        """Base offered load (no surge), in Erlangs at full speed."""
        return sum(t.calls_per_hour for t in self.topics) / 3600.0 * self.handle_mean_s

    # --- variations, for checking that a policy is not fitted to one file -------------
    def with_seeds(self, seeds: tuple[int, ...] | list[int]) -> Scenario:
        return replace(self, seeds=tuple(seeds))

    def scaled(self, load: float) -> Scenario:
        """Every arrival rate multiplied by ``load`` (surge factors unchanged)."""
        topics = tuple(replace(t, calls_per_hour=t.calls_per_hour * load) for t in self.topics)
        return replace(self, topics=topics, name=f"{self.name}x{load:g}")

    def surge_moved(self, topic: str) -> Scenario:
        """All surges moved to ``topic``: the same shock hitting another group."""
        if topic not in self.topic_names:
            raise ScenarioError(f"unknown topic {topic!r}")
        surges = tuple(s for t in self.topics for s in t.surges)
        topics = tuple(replace(t, surges=surges if t.name == topic else ()) for t in self.topics)
        return replace(self, topics=topics, name=f"{self.name}-surge-{topic}")

    def with_agents(self, agents: tuple[AgentGroup, ...]) -> Scenario:
        return replace(self, agents=agents)

    def with_skill(self, group: int, topic: str, penalty: int, agents: int = 1) -> Scenario:
        """``agents`` agents of ``[[agents]]`` block ``group`` also take ``topic`` at
        ``penalty``; they are split off into their own block (appended) unless it is the
        whole block."""
        if topic not in self.topic_names:
            raise ScenarioError(f"unknown topic {topic!r}")
        g = self.agents[group]
        if any(t == topic for t, _ in g.skills):
            raise ScenarioError(f"agents[{group}] already have {topic!r}")
        if not 1 <= agents <= g.count:
            raise ScenarioError(f"agents[{group}] has {g.count} agents, cannot train {agents}")
        trained = AgentGroup(agents, (*g.skills, (topic, penalty)))
        groups = list(self.agents)
        if agents == g.count:
            groups[group] = trained
        else:
            groups[group] = replace(g, count=g.count - agents)
            groups.append(trained)
        return replace(self, agents=tuple(groups))

    def with_duration(self, duration_s: float, warmup_s: float | None = None) -> Scenario:
        return replace(self, duration_s=duration_s,
                       warmup_s=self.warmup_s if warmup_s is None else warmup_s)


def _req(table: dict[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise ScenarioError(f"{where}: missing key {key!r}")
    return table[key]


def parse_scenario(data: dict[str, Any], source: str = "") -> Scenario:
    sc = _req(data, "scenario", source or "scenario")
    where = f"{source}[scenario]"
    dist = str(sc.get("handle_distribution", "lognormal"))
    if dist not in ("lognormal", "exponential"):
        raise ScenarioError(f"{where}: handle_distribution must be lognormal or exponential")
    # An exponential distribution has CV 1 by definition; the file may omit handle_cv then.
    cv = float(sc.get("handle_cv", 1.0 if dist == "exponential" else _req(sc, "handle_cv", where)))
    topics = []
    for i, t in enumerate(_req(data, "topics", source)):
        surges = tuple(Surge(float(s["start_s"]), float(s["end_s"]), float(s["factor"]))
                       for s in t.get("surges", []))
        topics.append(TopicSpec(str(_req(t, "name", f"topics[{i}]")),
                                float(_req(t, "calls_per_hour", f"topics[{i}]")), surges))
    names = {t.name for t in topics}
    if len(names) != len(topics):
        raise ScenarioError(f"{source}: duplicate topic names")
    agents = []
    for i, g in enumerate(_req(data, "agents", source)):
        skills = tuple((str(k), int(v)) for k, v in _req(g, "skills", f"agents[{i}]").items())
        unknown = [k for k, _ in skills if k not in names]
        if unknown:
            raise ScenarioError(f"{source} agents[{i}]: unknown topics {unknown}")
        if any(p < 0 for _, p in skills):
            raise ScenarioError(f"{source} agents[{i}]: penalties must be >= 0")
        agents.append(AgentGroup(int(_req(g, "count", f"agents[{i}]")), skills))
    return Scenario(
        name=str(sc.get("name", Path(source).stem)),
        duration_s=float(_req(sc, "duration_s", where)),
        warmup_s=float(sc.get("warmup_s", 0.0)),
        seeds=tuple(int(s) for s in _req(sc, "seeds", where)),
        handle_mean_s=float(_req(sc, "handle_mean_s", where)),
        handle_cv=cv,
        handle_distribution=dist,
        secondary_slowdown=float(sc.get("secondary_slowdown", 1.0)),
        patience_mean_s=float(sc.get("patience_mean_s", PATIENCE_NEVER)),
        service_level_s=float(sc.get("service_level_s", 20.0)),
        topics=tuple(topics),
        agents=tuple(agents),
        source=source,
    )


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    with p.open("rb") as f:
        return parse_scenario(tomllib.load(f), str(p))


def scenarios_dir() -> Path:
    """``../shared/scenarios`` beside the repository."""
    return Path(__file__).resolve().parents[3] / "shared" / "scenarios"
