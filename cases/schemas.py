"""What goes in and comes out of the case store: immutable pydantic models.

The store never hands out ORM objects: those are bound to a session, lazy-load, and carry the
encrypted columns. Views are frozen snapshots that are safe to pass across tasks and to log:
they carry the caller's number masked only (inputs keep the plain one out of ``repr``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from annotated_types import MaxLen
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)

from cases.codes import CaseStatus, CaseType, Outcome, Urgency
from cases.privacy import is_withheld
from cases.text import StoredText


def _real_or_none(v: str | None) -> str | None:
    if v is None or is_withheld(v):
        return None
    return v.strip()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallStart(_Frozen):
    """A new call as the AMI layer sees it (Newchannel / the first AGI or AudioSocket contact)."""

    node: str = Field(default="default", min_length=1, max_length=64)
    call_id: str = Field(min_length=1, max_length=64)  # Asterisk Uniqueid of the caller leg
    channel: str | None = Field(default=None, max_length=128)
    caller_number: str | None = Field(default=None, max_length=64, repr=False)
    caller_name: str | None = Field(default=None, max_length=128)
    dnid: str | None = Field(default=None, max_length=64)
    locale: str | None = Field(default=None, max_length=16)
    started_at: AwareDatetime | None = None  # None: now

    _no_placeholders = field_validator("caller_number", "caller_name")(_real_or_none)

    @field_validator("channel", "caller_number", "caller_name", "dnid", mode="before")
    @classmethod
    def _fit(cls, v: object, info: ValidationInfo) -> object:
        """Caller ID and channel names come from the network: one too long for its column
        is cut to fit, so the call still gets its case (never refused for it)."""
        if not isinstance(v, str) or info.field_name is None:
            return v
        limits = [m.max_length for m in cls.model_fields[info.field_name].metadata
                  if isinstance(m, MaxLen)]
        return v[: min(limits)] if limits else v


class CaseChanges(_Frozen):
    """Fields the call path may set while a call is in progress, with their types.

    Status, outcome and the caller number are deliberately absent: the outcome belongs to
    ``finish_call``, the status to the lifecycle rules, and the number is fixed at call start.
    """

    case_type: CaseType | None = None
    topic: StoredText | None = Field(default=None, max_length=64)
    topic_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    urgency: Urgency = Urgency.NORMAL
    district: StoredText | None = Field(default=None, max_length=64)
    description: StoredText | None = None
    transcript: StoredText | None = None
    ivr_path: list[JsonValue] = Field(default_factory=list)
    queue: StoredText | None = Field(default=None, max_length=64)
    agent: StoredText | None = Field(default=None, max_length=64)
    caller_name: StoredText | None = Field(default=None, max_length=128)
    locale: StoredText | None = Field(default=None, max_length=16)
    answered_at: AwareDatetime | None = None
    wait_s: float | None = Field(default=None, ge=0.0)
    talk_s: float | None = Field(default=None, ge=0.0)
    deadline: AwareDatetime | None = None

    @classmethod
    def parse(cls, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate ``changes`` and return only the fields given, as column values.

        Unknown names raise ``ValueError`` naming them (a typo must not be silently dropped);
        bad values raise pydantic's ``ValidationError``, itself a ``ValueError``.
        """
        unknown = sorted(set(changes) - set(cls.model_fields))
        if unknown:
            raise ValueError(
                f"unknown case field(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(cls.model_fields))}"
            )
        model = cls.model_validate(changes)
        # In the caller's order, so that the timeline reads the way the changes were written.
        return {name: _column_value(getattr(model, name)) for name in changes}


def _column_value(v: Any) -> Any:
    # Enums are stored as their code; times as UTC so that views read back what was written.
    if isinstance(v, CaseType | Urgency):
        return v.value
    if isinstance(v, datetime):
        return v.astimezone(UTC)
    return v


# A known code becomes its enum; an unknown one (written by a newer version of the store, e.g.
# a lifecycle state this code does not know yet) stays a plain string instead of failing.
def _lenient() -> Any:
    return Field(union_mode="left_to_right")


class CaseView(_Frozen):
    """A case as the store shows it: the caller's number masked (``caller_masked``).

    The plain number is never part of a view; ``CaseStore.reveal_number`` returns it to a
    named actor with a reason and writes the audit log."""

    number: str
    version: int  # changes with every write: pass it back as ``expected_version``
    status: CaseStatus | str = _lenient()
    node: str
    call_id: str
    channel: str | None
    caller_masked: str
    caller_name: str | None
    dnid: str | None
    locale: str | None
    case_type: CaseType | str | None = _lenient()
    topic: str | None
    topic_confidence: float | None
    urgency: Urgency | str = _lenient()
    district: str | None
    description: str | None
    transcript: str | None
    ivr_path: tuple[JsonValue, ...]
    queue: str | None
    agent: str | None
    wait_s: float | None
    talk_s: float | None
    outcome: Outcome | str | None = _lenient()
    created_at: datetime
    updated_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    deadline: datetime | None
    deadline_from: datetime | None
    department: str | None
    replied_at: datetime | None
    closed_at: datetime | None
    satisfaction: int | None
    reopen_count: int
    merged_into: str | None
    related_to: str | None  # the earlier case of a repeat caller on the same topic
    repeat_count: int       # earlier cases of this caller on this topic within the window
    priority: int           # higher is more pressing; raised for repeat callers
    address: str | None
    lat: float | None
    lon: float | None
    media_url: str | None

    @property
    def is_repeat(self) -> bool:
        return self.related_to is not None


class CaseEventView(_Frozen):
    number: str
    at: datetime
    kind: str
    detail: dict[str, JsonValue]
    actor: str


class CaseIntake(_Frozen):
    """A case that does not come from a call: Open311, a web form, an app.

    ``submission_id`` identifies the submission on its channel; submitting it again returns
    the case already created (a client retrying after a timeout must not open a second one).
    """

    channel: StoredText = Field(min_length=1, max_length=64)
    submission_id: StoredText = Field(min_length=1, max_length=64)
    case_type: CaseType | None = None
    topic: StoredText | None = Field(default=None, max_length=64)
    urgency: Urgency = Urgency.NORMAL
    district: StoredText | None = Field(default=None, max_length=64)
    description: StoredText | None = None
    address: StoredText | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    media_url: StoredText | None = Field(default=None, max_length=1024)
    caller_number: StoredText | None = Field(default=None, max_length=64, repr=False)
    caller_name: StoredText | None = Field(default=None, max_length=128, repr=False)
    caller_email: StoredText | None = Field(default=None, max_length=254, repr=False)
    locale: StoredText | None = Field(default=None, max_length=16)
    submitted_at: AwareDatetime | None = None  # None: now

    _no_placeholders = field_validator("caller_number", "caller_name")(_real_or_none)


class AuditRecord(_Frozen):
    """One unmasked view of a caller's details: who, when, which case, why."""

    at: datetime
    actor: str
    action: str
    case_number: str | None
    reason: str


class SupervisionLead(_Frozen):
    """A case that supervision (督办) should look at, and why."""

    number: str
    kind: str                  # "overdue", "repeat_complaint" or "reopened"
    reason: str                # human-readable, e.g. "overdue by 3 h (deadline …)"
    related: tuple[str, ...] = ()  # other cases behind the lead (earlier complaints)
