"""What goes in and comes out of the case store: immutable pydantic models.

The store never hands out ORM objects: those are bound to a session, lazy-load, and carry the
encrypted columns. Views are frozen snapshots that are safe to pass across tasks and to log
(``caller_number`` is left out of ``repr`` so a logged view does not leak it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
)

from cases.codes import CaseStatus, CaseType, Outcome, Urgency

# What Asterisk and carriers put in CALLERID(num)/(name) when there is no real value.
_NO_CALLER = frozenset({"", "anonymous", "unknown", "<unknown>", "restricted", "private",
                        "unavailable", "withheld"})


def _real_or_none(v: str | None) -> str | None:
    if v is None or v.strip().lower() in _NO_CALLER:
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


class CaseChanges(_Frozen):
    """Fields the call path may set while a call is in progress, with their types.

    Status, outcome and the caller number are deliberately absent: the outcome belongs to
    ``finish_call``, the status to the lifecycle rules, and the number is fixed at call start.
    """

    case_type: CaseType | None = None
    topic: str | None = Field(default=None, max_length=64)
    topic_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    urgency: Urgency = Urgency.NORMAL
    district: str | None = Field(default=None, max_length=64)
    description: str | None = None
    transcript: str | None = None
    ivr_path: list[JsonValue] = Field(default_factory=list)
    queue: str | None = Field(default=None, max_length=64)
    agent: str | None = Field(default=None, max_length=64)
    caller_name: str | None = Field(default=None, max_length=128)
    locale: str | None = Field(default=None, max_length=16)
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
    number: str
    status: CaseStatus | str = _lenient()
    node: str
    call_id: str
    channel: str | None
    caller_masked: str
    caller_number: str | None = Field(repr=False)  # plain; the API's caller decides who sees it
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


class CaseEventView(_Frozen):
    number: str
    at: datetime
    kind: str
    detail: dict[str, JsonValue]
    actor: str
