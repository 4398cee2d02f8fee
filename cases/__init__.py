"""Case store: the record (工单) every call leaves, from acceptance (受理) to its end.

Public API: ``CaseStore`` with the ``CallStart`` input and ``CaseView`` / ``CaseEventView``
outputs, the stable codes, ``mask_number`` and the error classes.
"""

from cases.codes import CaseStatus, CaseType, EventKind, Outcome, Urgency
from cases.errors import (
    CallerNumberUnreadable,
    CaseNotFound,
    CaseStoreError,
    CaseStoreUnavailable,
    NumberingExhausted,
)
from cases.privacy import mask_number
from cases.schemas import CallStart, CaseChanges, CaseEventView, CaseView
from cases.store import CaseStore

__all__ = [
    "CallStart",
    "CallerNumberUnreadable",
    "CaseChanges",
    "CaseEventView",
    "CaseNotFound",
    "CaseStatus",
    "CaseStore",
    "CaseStoreError",
    "CaseStoreUnavailable",
    "CaseType",
    "CaseView",
    "EventKind",
    "NumberingExhausted",
    "Outcome",
    "Urgency",
    "mask_number",
]
