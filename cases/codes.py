"""Stable codes stored in the database.

The database keeps short ASCII codes, never display labels: labels change with locale and with
the centre's wording (受理 / 登记 / "logged"), codes must not, because reports, exports and the
lifecycle rules key on them. Labels here are the Chinese 12345 terms; a UI may map its own.
"""

from __future__ import annotations

from enum import StrEnum


class CaseType(StrEnum):
    CONSULT = "consult"        # 咨询
    HELP = "help"              # 求助
    COMPLAINT = "complaint"    # 投诉
    REPORT = "report"          # 举报
    SUGGESTION = "suggestion"  # 建议

    @property
    def label_zh(self) -> str:
        return _CASE_TYPE_ZH[self]


_CASE_TYPE_ZH = {
    CaseType.CONSULT: "咨询",
    CaseType.HELP: "求助",
    CaseType.COMPLAINT: "投诉",
    CaseType.REPORT: "举报",
    CaseType.SUGGESTION: "建议",
}


class CaseStatus(StrEnum):
    """Lifecycle states. Only the first exists yet; the lifecycle work adds the others
    (dispatched 派单, in progress 办理, replied 答复, revisited 回访, closed 办结 …) and the
    allowed transitions between them."""

    ACCEPTED = "accepted"  # 受理


class Urgency(StrEnum):
    NORMAL = "normal"      # 一般
    URGENT = "urgent"      # 紧急
    CRITICAL = "critical"  # 特急


class Outcome(StrEnum):
    """How the call itself ended (not the case: a case outlives its call)."""

    ANSWERED = "answered"        # an agent talked to the caller
    ABANDONED = "abandoned"      # the caller hung up before an agent answered
    CALLBACK = "callback"        # the caller asked to be called back instead of waiting
    SELF_SERVICE = "self_service"  # the IVR answered the need without an agent
    TRANSFERRED = "transferred"  # handed to another centre (110/119/120 …)
    FAILED = "failed"            # technical failure on our side


# Outcomes that leave the centre owing the caller a call (回拨).
CALLBACK_OUTCOMES = frozenset({Outcome.ABANDONED, Outcome.CALLBACK})


class EventKind(StrEnum):
    CREATED = "created"
    CHANGED = "changed"              # one field set by the call path; detail: field, value
    CALL_ENDED = "call_ended"
    CALLBACK_TASK = "callback_task"  # 回拨: the centre owes the caller a call
