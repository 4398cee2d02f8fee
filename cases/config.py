"""Rules of the case store that a centre configures (pydantic, so a TOML table validates).

The store takes one ``CasesConfig``; the defaults follow common 12345 practice.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cases.deadlines import DeadlineConfig
from cases.lifecycle import SATISFACTION_MAX, SATISFACTION_MIN


class SupervisionConfig(BaseModel):
    """When a case becomes a supervision lead (督办线索) besides being overdue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # This many complaints (投诉) from one caller within ``repeat_complaint_days``: the newest
    # is a lead, because a caller who keeps complaining is a sign the handling does not work.
    repeat_complaints: int = Field(default=2, ge=2)
    repeat_complaint_days: int = Field(default=30, ge=1)


class CasesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    deadlines: DeadlineConfig = Field(default_factory=DeadlineConfig)
    # A call from the same number on the same topic within this many days is a repeat call:
    # linked to the earlier case (related_to) and given a higher priority.
    repeat_window_days: int = Field(default=7, ge=1)
    # Satisfaction below this (on 1-5) at the callback (回访) reopens the case.
    unsatisfied_below: int = Field(default=3, ge=SATISFACTION_MIN + 1, le=SATISFACTION_MAX)
    supervision: SupervisionConfig = Field(default_factory=SupervisionConfig)
