"""Case store: the record (工单) every call leaves, from acceptance (受理) to its end.

Public API: ``CaseStore`` (see ``cases.store`` for its parts) with its inputs (``CallStart``,
``CaseIntake``, ``DepartmentSeed``) and frozen outputs (``CaseView``, ``CaseEventView``,
``DepartmentView``, ``AuditRecord``, ``SupervisionLead``, ``Callback``), the configuration (``CasesConfig``),
the lifecycle ``Action`` codes, the stable codes, ``mask_number`` and the error classes.
"""

from cases.analysis import Hotspot, HotspotRule
from cases.callbacks import Callback, CallbackCounts
from cases.codes import CallbackResult, CaseStatus, CaseType, EventKind, Outcome, Urgency
from cases.config import CasesConfig, SupervisionConfig
from cases.deadlines import DeadlineConfig, DeadlineRule
from cases.departments import DepartmentKind, DepartmentSeed, DepartmentView
from cases.errors import (
    CallerNumberUnreadable,
    CaseClosed,
    CaseNotFound,
    CaseStoreError,
    CaseStoreUnavailable,
    ConcurrentUpdate,
    InvalidTransition,
    NumberingExhausted,
    SecretKeyMismatch,
    UnknownDepartment,
)
from cases.lifecycle import Action
from cases.privacy import mask_number
from cases.schemas import (
    AuditRecord,
    CallStart,
    CaseChanges,
    CaseEventView,
    CaseIntake,
    CaseView,
    SupervisionLead,
)
from cases.store import CaseStore

__all__ = [
    "Action",
    "AuditRecord",
    "CallStart",
    "Callback",
    "CallbackCounts",
    "CallbackResult",
    "CallerNumberUnreadable",
    "CaseChanges",
    "CaseClosed",
    "CaseEventView",
    "CaseIntake",
    "CaseNotFound",
    "CaseStatus",
    "CaseStore",
    "CaseStoreError",
    "CaseStoreUnavailable",
    "CaseType",
    "CaseView",
    "CasesConfig",
    "ConcurrentUpdate",
    "DeadlineConfig",
    "DeadlineRule",
    "DepartmentKind",
    "DepartmentSeed",
    "DepartmentView",
    "EventKind",
    "Hotspot",
    "HotspotRule",
    "InvalidTransition",
    "NumberingExhausted",
    "Outcome",
    "SecretKeyMismatch",
    "SupervisionConfig",
    "SupervisionLead",
    "UnknownDepartment",
    "Urgency",
    "mask_number",
]
