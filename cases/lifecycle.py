"""The case lifecycle as an explicit state machine (no I/O: the store applies its plans).

==================  =========================================  ==========================
action              from                                       to
==================  =========================================  ==========================
dispatch 派单        accepted, returned                         dispatched
transfer 转办        accepted, returned                         transferred
reassign 改派        dispatched, transferred, processing        dispatched
start 办理           dispatched, transferred                    processing
return 退单          dispatched, transferred, processing        returned
reply 反馈           processing                                 replied
revisit 回访         replied                                    revisited; processing when
                                                                the caller is unsatisfied
close 办结           accepted (answered on the call, 直接办结),   closed
                    replied (no callback possible), revisited
reopen 重办          revisited, closed                          processing; accepted when no
                                                                department ever had it
merge 并单           every open state                           merged (closed as a
                                                                duplicate of a master case)
==================  =========================================  ==========================

merged is final; closed is final unless reopened; every other state is open.

Why some actions need arguments:

* dispatch, transfer and reassign name the department (the store checks it exists);
* return, reopen, and closing a replied case without a callback (回访 skipped, e.g. the caller
  cannot be reached) need a reason, because supervision (督办) reviews exactly these;
* revisit needs the satisfaction score (1-5); below ``unsatisfied_below`` it reopens the case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from cases.codes import CaseStatus
from cases.errors import InvalidTransition

S = CaseStatus


class Action(StrEnum):
    DISPATCH = "dispatch"  # 派单
    TRANSFER = "transfer"  # 转办
    REASSIGN = "reassign"  # 改派
    START = "start"        # 办理 (the department signs for it, 签收)
    RETURN = "return"      # 退单
    REPLY = "reply"        # 反馈
    REVISIT = "revisit"    # 回访
    CLOSE = "close"        # 办结
    REOPEN = "reopen"      # 重办
    MERGE = "merge"        # 并单


SATISFACTION_MIN, SATISFACTION_MAX = 1, 5


@dataclass(frozen=True, slots=True)
class Rule:
    sources: frozenset[CaseStatus]
    target: CaseStatus  # the usual target; revisit and reopen may pick another (see plan)
    needs_department: bool = False


OPEN_STATES = frozenset({S.ACCEPTED, S.DISPATCHED, S.TRANSFERRED, S.PROCESSING, S.RETURNED,
                         S.REPLIED, S.REVISITED})
FINAL_STATES = frozenset({S.CLOSED, S.MERGED})
# States in which the handling deadline runs: once the department has replied, the clock that
# supervision watches has stopped (the callback has its own rhythm).
DEADLINE_STATES = frozenset({S.ACCEPTED, S.DISPATCHED, S.TRANSFERRED, S.PROCESSING,
                             S.RETURNED})
# Hand-overs to a department: each starts the department's deadline afresh.
HANDOVER_ACTIONS = frozenset({Action.DISPATCH, Action.TRANSFER, Action.REASSIGN})

RULES: Mapping[Action, Rule] = {
    Action.DISPATCH: Rule(frozenset({S.ACCEPTED, S.RETURNED}), S.DISPATCHED, True),
    Action.TRANSFER: Rule(frozenset({S.ACCEPTED, S.RETURNED}), S.TRANSFERRED, True),
    Action.REASSIGN: Rule(frozenset({S.DISPATCHED, S.TRANSFERRED, S.PROCESSING}), S.DISPATCHED,
                          True),
    Action.START: Rule(frozenset({S.DISPATCHED, S.TRANSFERRED}), S.PROCESSING),
    Action.RETURN: Rule(frozenset({S.DISPATCHED, S.TRANSFERRED, S.PROCESSING}), S.RETURNED),
    Action.REPLY: Rule(frozenset({S.PROCESSING}), S.REPLIED),
    Action.REVISIT: Rule(frozenset({S.REPLIED}), S.REVISITED),
    Action.CLOSE: Rule(frozenset({S.ACCEPTED, S.REPLIED, S.REVISITED}), S.CLOSED),
    Action.REOPEN: Rule(frozenset({S.REVISITED, S.CLOSED}), S.PROCESSING),
    Action.MERGE: Rule(OPEN_STATES, S.MERGED),
}


def allowed_actions(status: CaseStatus | str) -> tuple[Action, ...]:
    """Actions possible from ``status``, in declaration order (none for unknown states)."""
    return tuple(a for a, r in RULES.items() if status in r.sources)


@dataclass(frozen=True, slots=True)
class Step:
    """What a transition will do, decided before anything is written."""

    action: Action
    source: CaseStatus
    target: CaseStatus
    reopened: bool  # counts towards supervision's "closed and reopened" lead


def plan(
    number: str,
    status: CaseStatus | str,
    action: Action | str,
    *,
    current_department: str | None,
    department: str | None = None,
    reason: str | None = None,
    satisfaction: int | None = None,
    master: str | None = None,
    unsatisfied_below: int = 3,
) -> Step:
    """Check one transition and return its step.

    Raises ``InvalidTransition`` when the action is not allowed in the current state, and
    ``ValueError`` for arguments that are missing, out of range or meaningless for the action
    (a department given to ``reply`` is a bug in the caller, not something to ignore).
    """
    try:
        act = Action(action)
    except ValueError:
        raise ValueError(f"unknown action {action!r}; actions: "
                         f"{', '.join(a.value for a in Action)}") from None
    rule = RULES[act]
    if status not in rule.sources:
        raise InvalidTransition(number, str(status), act.value,
                                tuple(a.value for a in allowed_actions(status)))
    source = CaseStatus(status)
    _check_arguments(act, source, current_department=current_department,
                     department=department, reason=reason, satisfaction=satisfaction,
                     master=master, number=number)

    target, reopened = rule.target, False
    if act is Action.REVISIT:
        assert satisfaction is not None
        if satisfaction < unsatisfied_below:
            target, reopened = S.PROCESSING, True  # an unsatisfied caller reopens the case
    elif act is Action.REOPEN:
        reopened = True
        if current_department is None:
            target = S.ACCEPTED  # answered directly, never with a department: start over
    return Step(act, source, target, reopened)


def _check_arguments(
    act: Action,
    source: CaseStatus,
    *,
    current_department: str | None,
    department: str | None,
    reason: str | None,
    satisfaction: int | None,
    master: str | None,
    number: str,
) -> None:
    rule = RULES[act]
    if rule.needs_department and not department:
        raise ValueError(f"{act.value} needs a department")
    if department is not None and not rule.needs_department:
        raise ValueError(f"department is only for dispatch, transfer and reassign, not {act}")
    if act is Action.REASSIGN and department == current_department:
        raise ValueError(f"reassign: case {number} is already with {department}")

    needs_reason = act in (Action.RETURN, Action.REOPEN) or (
        act is Action.CLOSE and source is S.REPLIED)
    if needs_reason and not (reason and reason.strip()):
        what = "close without a callback (回访)" if act is Action.CLOSE else act.value
        raise ValueError(f"{what} needs a reason")

    if act is Action.REVISIT:
        if satisfaction is None:
            raise ValueError("revisit needs the satisfaction score")
        if isinstance(satisfaction, bool) or not SATISFACTION_MIN <= satisfaction <= SATISFACTION_MAX:
            raise ValueError(f"satisfaction must be {SATISFACTION_MIN}..{SATISFACTION_MAX}, "
                             f"got {satisfaction!r}")
    elif satisfaction is not None:
        raise ValueError(f"satisfaction is only for revisit, not {act}")

    if act is Action.MERGE:
        if not master:
            raise ValueError("merge needs the master case number")
        if master == number:
            raise ValueError(f"cannot merge case {number} into itself")
    elif master is not None:
        raise ValueError(f"master is only for merge, not {act}")
