"""queues.conf (one queue per routing group) and queuerules.conf (penalty rules, if any)."""

from __future__ import annotations

from dataclasses import dataclass

from dialplan.common import DialplanError, default_queue, header
from dialplan.extensions import exit_keys
from ivr.config import HotlineConfig
from ivr.menus.waiting import EXIT_CONTEXT


@dataclass(frozen=True)
class QueueSettings:
    """Queue options the configuration does not carry (yet): the same for every group."""

    ring_timeout_s: int = 15        # ring one agent this long before trying the next
    retry_s: int = 1                # pause between two rounds of ringing
    wrapup_s: int = 10              # after a call: time to finish the case record
    service_level_s: int = 20       # answered within this counts toward the service level
    hold_announce_every_s: int = 45


@dataclass(frozen=True)
class PenaltyStep:
    """queuerules.conf ``penaltychange``: ``after_s`` into the wait, set QUEUE_MAX_PENALTY /
    QUEUE_MIN_PENALTY (absolute "5" or relative "+2"; empty: unchanged)."""

    after_s: int
    max_penalty: str
    min_penalty: str = ""


@dataclass(frozen=True)
class PenaltyRule:
    name: str
    steps: tuple[PenaltyStep, ...]


def penalty_rules(config: HotlineConfig) -> tuple[PenaltyRule, ...]:
    """Penalty rules of the routing configuration: none today. The routing policy sets each
    caller's window itself (QUEUE_MAX_PENALTY before Queue(), then AMI Redirect to widen it),
    so no queuerules.conf is generated. The hook, when routing grows time-based rules: return
    them here (each queue then names the first as ``defaultrule``)."""
    return ()


def render_queues(config: HotlineConfig, hold_prompt: str,
                  rules: tuple[PenaltyRule, ...] = (),
                  settings: QueueSettings = QueueSettings()) -> str:
    default_queue(config)  # refuses a queue named 'general'
    queues = sorted({g.queue for g in config.routing.groups})
    s = settings
    lines = [header("queues.conf: one queue per routing group", [
        ("Agents join and leave over AMI (QueueAdd/QueueRemove from the console): no static "
         f"members. Waiting callers hear music on hold and, every {s.hold_announce_every_s} s, "
         f"the '{hold_prompt}' prompt in their language, which ends with the menu's callback "
         "offer; the callback key leaves the queue through the exit context (context=). "
         "Position and hold-time announcements are off: Asterisk's own recordings of them "
         "exist only in the core sound languages."),
    ]),
        "[general]",
        # Memberships survive an Asterisk restart; the service resyncs with QueueStatus.
        "persistentmembers=yes",
        # An agent in several queues: last call and wrap-up count across all of them, so a
        # call just ended in one queue is not followed at once by a call from another.
        "shared_lastcall=yes",
        "keepstats=yes",
        "autofill=yes"]
    for queue in queues:
        groups = sorted(g.name for g in config.routing.groups if g.queue == queue)
        lines += ["", f"[{queue}]", f"; routing group(s): {', '.join(groups)}",
                  "strategy=leastrecent",
                  f"timeout={s.ring_timeout_s}",
                  f"retry={s.retry_s}",
                  f"wrapuptime={s.wrapup_s}",
                  # Nobody logged in is no reason to refuse a citizen: wait, or overflow by
                  # the service after ivr.queue_timeout_s.
                  "joinempty=yes",
                  "leavewhenempty=no",
                  "ringinuse=no",
                  "autopause=no",
                  "maxlen=0",
                  f"servicelevel={s.service_level_s}",
                  "musicclass=default",
                  "announce-frequency=0",
                  "announce-position=no",
                  "announce-holdtime=no",
                  f"periodic-announce={hold_prompt}",
                  f"periodic-announce-frequency={s.hold_announce_every_s}"]
        if exit_keys(config):
            lines.append(f"context={EXIT_CONTEXT}")
        if rules:
            lines.append(f"defaultrule={rules[0].name}")
    return "\n".join(lines) + "\n"


def render_queuerules(rules: tuple[PenaltyRule, ...]) -> str:
    names = [r.name for r in rules]
    if len(set(names)) != len(names) or any(n.lower() == "general" for n in names):
        raise DialplanError("penalty rules need distinct names, none of them 'general'")
    sections = []
    for rule in rules:
        lines = [f"[{rule.name}]"]
        for step in sorted(rule.steps, key=lambda st: st.after_s):
            value = f"{step.after_s},{step.max_penalty}"
            if step.min_penalty:
                value += f",{step.min_penalty}"
            lines.append(f"penaltychange => {value}")
        sections.append("\n".join(lines) + "\n")
    return header("queuerules.conf: penalty rules of the routing configuration") + "\n" + \
        "\n".join(sections)
