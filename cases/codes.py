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
    """Lifecycle states; ``cases.lifecycle`` holds the transitions between them."""

    ACCEPTED = "accepted"        # 受理: taken in by the centre
    DISPATCHED = "dispatched"    # 派单: sent to a department to handle
    TRANSFERRED = "transferred"  # 转办: handed over to a department outside the dispatch system
    PROCESSING = "processing"    # 办理: the department is working on it
    RETURNED = "returned"        # 退单: the department sent it back; the centre re-dispatches
    REPLIED = "replied"          # 反馈: the department has answered
    REVISITED = "revisited"      # 回访: the caller was asked and is satisfied
    CLOSED = "closed"            # 办结
    MERGED = "merged"            # 并单: closed as a duplicate of another case (``merged_into``)

    @property
    def label_zh(self) -> str:
        return _STATUS_ZH[self]


_STATUS_ZH = {
    CaseStatus.ACCEPTED: "受理",
    CaseStatus.DISPATCHED: "派单",
    CaseStatus.TRANSFERRED: "转办",
    CaseStatus.PROCESSING: "办理",
    CaseStatus.RETURNED: "退单",
    CaseStatus.REPLIED: "反馈",
    CaseStatus.REVISITED: "回访",
    CaseStatus.CLOSED: "办结",
    CaseStatus.MERGED: "并单",
}


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
    TRANSITION = "transition"        # a lifecycle step; detail: action, from, to, reason …
    MERGED_IN = "merged_in"          # on the master case: a duplicate was merged into it
    DEADLINE_SET = "deadline_set"    # detail: deadline, rule, counted from
    LINKED = "linked"                # repeat caller: detail: related_to, repeat_count
    SURVEY_CALL = "survey_call"      # 回访 call claimed by the scheduler; detail: attempt
    SURVEY_CALL_FAILED = "survey_call_failed"  # ...and not placed after all (not an attempt)
    SURVEY_TO_AGENT = "survey_to_agent"  # the citizen answered and asked for a person
    # 回拨 work on a callback_task (``cases.callbacks``): the latest of these events (or the
    # task itself) is the callback's state, so nothing else has to be kept in step with them.
    CALLBACK_ATTEMPT = "callback_attempt"  # called, no answer; detail: attempt, due, note
    CALLBACK_DONE = "callback_done"        # settled; detail: result, attempts, note


class CallbackResult(StrEnum):
    """What an operator's call back (回拨) came to."""

    REACHED = "reached"      # the citizen was reached: the task is done
    NO_ANSWER = "no_answer"  # an attempt; the task stays open, due again later
    GIVEN_UP = "given_up"    # no more attempts (unreachable, withheld number ...): done
