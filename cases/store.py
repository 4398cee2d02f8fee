"""``CaseStore``: the case records (工单) that every call leaves, behind one async API.

One class for callers, assembled from one mixin per concern so each module stays small:

=============================  ==========================================================
``cases.core``                 engine, transactions, views (``open``, ``close``, ``now``)
``cases.callpath``             ``open_call_case``, ``update_call_case``, ``finish_call``
``cases.intake``               ``open_case`` (Open311, web, app)
``cases.editing``              ``edit_case`` (the console's case form, by number)
``cases.reads``                ``get``, ``get_by_call``, ``list_cases``, ``find_cases``,
                               ``history_for_number``, ``count``, ``timeline``
``cases.repeat``               ``repeat_of`` (repeat callers)
``cases.lifecycle_store``      ``transition`` (the state machine of ``cases.lifecycle``)
``cases.departments_store``    ``load_departments``, ``departments``, ``department``,
                               ``department_path``
``cases.supervision``          ``overdue``, ``supervision_leads``
``cases.audit``                ``reveal_number``, ``reveal_email``, ``audit_log``
``cases.survey_store``         ``replied_due``, ``claim_survey_call``,
                               ``release_survey_call`` (回访 calls)
``cases.analysis_store``       ``counts``, ``hotspots``
``cases.callbacks``            ``callbacks_owed``, ``callback_counts``, ``callback``,
                               ``settle_callback`` (回拨 calls)
=============================  ==========================================================

Failures the call path must survive arrive as ``CaseStoreUnavailable`` (see ``cases.errors``).
"""

from __future__ import annotations

from cases.analysis_store import AnalysisMixin
from cases.audit import AuditMixin
from cases.callbacks import CallbacksMixin
from cases.callpath import CallPathMixin
from cases.departments_store import DepartmentsMixin
from cases.editing import EditMixin
from cases.intake import IntakeMixin
from cases.lifecycle_store import LifecycleMixin
from cases.reads import ReadsMixin
from cases.supervision import SupervisionMixin
from cases.survey_store import SurveyMixin


class CaseStore(
    IntakeMixin,
    EditMixin,
    CallPathMixin,
    CallbacksMixin,
    ReadsMixin,
    LifecycleMixin,
    DepartmentsMixin,
    SupervisionMixin,
    AuditMixin,
    AnalysisMixin,
    SurveyMixin,
):
    """See the module docstring; construct with ``StoreCore``'s arguments."""
