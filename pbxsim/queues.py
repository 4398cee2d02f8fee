"""app_queue's configuration and state: queues, members, waiting callers, statistics.

The Queue() application flow itself lives in queue_app.py; AMI member actions in
queue_actions.py. Member selection follows app_queue: lowest ``penalty * 1000000 + strategy
metric`` first, members paused / busy / ringing / in wrap-up are skipped, the caller's
QUEUE_MAX_PENALTY / QUEUE_MIN_PENALTY bound the penalties it may reach.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

from .ami_codec import Fields

if TYPE_CHECKING:
    from .channels import Channel

log = logging.getLogger("pbxsim.queues")

STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear")


def _truth(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "y", "t", "1", "on")


@dataclass
class QueueConfig:
    """The queues.conf options pbxsim honours (Asterisk's defaults otherwise)."""

    name: str = ""
    strategy: str = "ringall"
    timeout: int = 15
    retry: int = 5
    wrapuptime: int = 0
    joinempty: str = "yes"
    leavewhenempty: str = "no"
    ringinuse: bool = True
    maxlen: int = 0
    servicelevel: int = 0
    weight: int = 0
    autofill: bool = True
    musicclass: str = "default"
    # app_queue's exit context: a caller pressing a key that is a one-digit extension there
    # leaves the queue and continues at that extension (EXITWITHKEY).
    context: str = ""
    members: list[tuple[str, int, str, str]] = field(default_factory=list)


def _apply_option(cfg: QueueConfig, key: str, value: str) -> None:
    key = key.lower()
    if key == "member":
        parts = [p.strip() for p in value.split(",")]
        iface = parts[0]
        penalty = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        name = parts[2] if len(parts) > 2 and parts[2] else iface
        state = parts[3] if len(parts) > 3 and parts[3] else iface
        cfg.members.append((iface, penalty, name, state))
        return
    known = {f.name: f for f in fields(QueueConfig)}
    if key not in known or key in ("name", "members"):
        log.debug("queues.conf option %s ignored", key)
        return
    current = getattr(cfg, key)
    if isinstance(current, bool):
        setattr(cfg, key, _truth(value))
    elif isinstance(current, int):
        try:
            setattr(cfg, key, int(value))
        except ValueError:
            log.warning("queues.conf: %s=%s is not a number", key, value)
    else:
        setattr(cfg, key, value.strip())


def parse_queues_conf(text: str) -> dict[str, QueueConfig]:
    queues: dict[str, QueueConfig] = {}
    current: QueueConfig | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and "]" in line:
            name = line[1:line.index("]")].strip()
            current = None if name == "general" else queues.setdefault(name, QueueConfig(name))
            continue
        if current is None:
            continue
        key, sep, value = line.partition("=>")
        if not sep:
            key, sep, value = line.partition("=")
        _apply_option(current, key.strip(), value.strip())
    return queues


def queue_configs(source: str | Mapping[str, object] | None, default_text: str
                  ) -> dict[str, QueueConfig]:
    """queues.conf text, or a dict of QueueConfig / option dicts, into named configs."""
    if source is None:
        return parse_queues_conf(default_text)
    if isinstance(source, str):
        return parse_queues_conf(source)
    out: dict[str, QueueConfig] = {}
    for name, value in source.items():
        if isinstance(value, QueueConfig):
            out[name] = replace(value, name=name)
        elif isinstance(value, Mapping):
            cfg = QueueConfig(name)
            for k, v in value.items():
                text = ("yes" if v else "no") if isinstance(v, bool) else str(v)
                _apply_option(cfg, str(k), text)
            out[name] = cfg
        else:
            raise TypeError(f"queue {name}: expected QueueConfig or dict, got {type(value)}")
    return out


@dataclass
class QueueMember:
    interface: str
    membername: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    wrapuptime: int = 0
    dynamic: bool = True
    ringinuse: bool = False
    last_status: int = -1


@dataclass(eq=False)
class QueueCaller:
    chan: Channel
    start: float
    original_position: int
    expire: float | None
    max_penalty: int | None = None
    min_penalty: int | None = None
    pending: bool = False
    prio: int = 0            # QUEUE_PRIO: ahead of every caller of a lower priority


@dataclass
class QueueStats:
    holdtime: int = 0
    talktime: int = 0
    completed: int = 0
    abandoned: int = 0
    completed_insl: int = 0
    abandoned_insl: int = 0


@dataclass
class CallQueue:
    config: QueueConfig
    members: dict[str, QueueMember] = field(default_factory=dict)
    callers: list[QueueCaller] = field(default_factory=list)
    stats: QueueStats = field(default_factory=QueueStats)
    rr_next: int = 0

    @property
    def name(self) -> str:
        return self.config.name

    def position(self, caller: QueueCaller) -> int:
        return self.callers.index(caller) + 1

    def find_member(self, interface: str) -> QueueMember | None:
        member = self.members.get(interface)
        if member is None:
            low = interface.lower()
            member = next((m for i, m in self.members.items() if i.lower() == low), None)
        return member

    def record_holdtime(self, hold: int) -> None:
        # app_queue's recalc_holdtime: an exponential average weighting the newest call by 1/4
        self.stats.holdtime = ((self.stats.holdtime << 2) - self.stats.holdtime + hold) >> 2

    def record_completed(self, hold: int, talk: int) -> None:
        s = self.stats
        s.completed += 1
        if hold <= self.config.servicelevel:
            s.completed_insl += 1
        s.talktime = talk if s.completed == 1 else ((s.talktime << 2) - s.talktime + talk) >> 2

    def record_abandoned(self, hold: int) -> None:
        self.stats.abandoned += 1
        if hold <= self.config.servicelevel:
            self.stats.abandoned_insl += 1

    def service_level_perf(self) -> tuple[str, str]:
        s = self.stats
        perf = 100.0 * s.completed_insl / s.completed if s.completed else 0.0
        total = s.completed + s.abandoned
        perf2 = 100.0 * (s.completed_insl + s.abandoned_insl) / total if total else 0.0
        return f"{perf:2.1f}", f"{perf2:2.1f}"


def member_event_fields(queue: CallQueue, m: QueueMember, status: int) -> Fields:
    """The member block of QueueMemberAdded/Removed/Pause/Penalty/Status."""
    return [
        ("Queue", queue.name), ("MemberName", m.membername), ("Interface", m.interface),
        ("StateInterface", m.state_interface),
        ("Membership", "dynamic" if m.dynamic else "static"), ("Penalty", str(m.penalty)),
        ("CallsTaken", str(m.calls_taken)), ("LastCall", str(m.last_call)),
        ("LastPause", str(m.last_pause)), ("LoginTime", str(m.login_time)),
        ("InCall", "1" if m.in_call else "0"), ("Status", str(status)),
        ("Paused", "1" if m.paused else "0"), ("PausedReason", m.paused_reason),
        ("Ringinuse", "1" if m.ringinuse else "0"), ("Wrapuptime", str(m.wrapuptime)),
    ]


def member_status_fields(queue: CallQueue, m: QueueMember, status: int) -> Fields:
    """The QueueMember event of a QueueStatus list (no Ringinuse, Name/Location keys)."""
    return [
        ("Event", "QueueMember"), ("Queue", queue.name), ("Name", m.membername),
        ("Location", m.interface), ("StateInterface", m.state_interface),
        ("Membership", "dynamic" if m.dynamic else "static"), ("Penalty", str(m.penalty)),
        ("CallsTaken", str(m.calls_taken)), ("LastCall", str(m.last_call)),
        ("LastPause", str(m.last_pause)), ("LoginTime", str(m.login_time)),
        ("InCall", "1" if m.in_call else "0"), ("Status", str(status)),
        ("Paused", "1" if m.paused else "0"), ("PausedReason", m.paused_reason),
        ("Wrapuptime", str(m.wrapuptime)),
    ]


def strategy_metric(queue: CallQueue, m: QueueMember, index: int, now: float,
                    rng: random.Random) -> float:
    """app_queue's calc_metric for one member (lower rings first)."""
    strategy = queue.config.strategy
    base = m.penalty * 1_000_000
    if strategy == "leastrecent":
        if not m.last_call:
            return base
        return base + max(0, 1_000_000 - (int(now) - m.last_call))
    if strategy == "fewestcalls":
        return base + m.calls_taken
    if strategy == "random":
        return base + rng.randrange(1000)
    if strategy in ("rrmemory", "rrordered", "linear"):
        n = max(1, len(queue.members))
        start = queue.rr_next if strategy != "linear" else 0
        return base + (index - start) % n
    return base  # ringall: every member of the best penalty tier rings together
