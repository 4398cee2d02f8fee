"""Tables of the case store (SQLAlchemy 2.0 typed declarative), portable SQLite/PostgreSQL.

Portability choices, each because the two databases differ:

* times go through ``UTCDateTime``: SQLite has no time zone type and would hand back naive
  datetimes, PostgreSQL's ``timestamptz`` hands back aware ones; both now give aware UTC;
* codes (status, outcome, case type …) are plain strings, not database enums, so adding a
  lifecycle state is a code change, not an ``ALTER TYPE`` migration;
* JSON is JSONB on PostgreSQL (indexable later) and JSON text on SQLite;
* ``BigInteger`` ids become ``INTEGER`` on SQLite, the only type it auto-increments.

These classes stay inside the store: callers get ``cases.schemas`` views, never ORM objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from cases.codes import CaseStatus, Urgency


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive time is ambiguous (server local? centre local? UTC?): refuse it early.
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        # SQLite stores the text as given; keep it offset-free so string order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonType = JSON().with_variant(JSONB(), "postgresql")
IdType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # A call resumed after an AMI reconnect re-announces the same channel: this constraint,
        # not application code, is what guarantees it cannot open a second case.
        UniqueConstraint("node", "call_id", name="uq_cases_node_call"),
        Index("ix_cases_caller_hash_created", "caller_number_hash", "created_at"),
        Index("ix_cases_status", "status"),
        Index("ix_cases_created_at", "created_at"),
        Index("ix_cases_deadline", "deadline"),
        Index("ix_cases_department", "department"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # YYYYMMDD + 6-digit daily sequence; sorts by day then arrival, so day ranges use the index.
    number: Mapped[str] = mapped_column(String(14), unique=True)

    node: Mapped[str] = mapped_column(String(64), default="default")
    call_id: Mapped[str] = mapped_column(String(64))  # Asterisk Uniqueid of the caller's channel
    channel: Mapped[str | None] = mapped_column(String(128))
    caller_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    caller_number_hash: Mapped[str | None] = mapped_column(String(64))
    caller_name: Mapped[str | None] = mapped_column(String(128))
    dnid: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(16))

    case_type: Mapped[str | None] = mapped_column(String(16))
    topic: Mapped[str | None] = mapped_column(String(64))
    topic_confidence: Mapped[float | None] = mapped_column(Float)
    urgency: Mapped[str] = mapped_column(String(16), default=Urgency.NORMAL.value)
    district: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    ivr_path: Mapped[list[Any]] = mapped_column(JsonType, default=list)

    queue: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    wait_s: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default=CaseStatus.ACCEPTED.value)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # -- added by revision 0002 (lifecycle, departments, repeat callers, Open311) --
    # Bumped by every write; the ORM adds "AND version = :seen" to each UPDATE, so a write
    # based on a stale read fails instead of silently overwriting (optimistic concurrency).
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    # Department code; checked by the store, not by a foreign key, so that revision 0002 can
    # add it to an existing SQLite table (SQLite cannot add a constraint to a table).
    department: Mapped[str | None] = mapped_column(String(64))
    deadline_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the clock's start
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 1-5, from the last 回访
    reopen_count: Mapped[int] = mapped_column(Integer, server_default="0")
    merged_into: Mapped[str | None] = mapped_column(String(14))  # master case number
    related_to: Mapped[str | None] = mapped_column(String(14))  # earlier case (repeat caller)
    repeat_count: Mapped[int] = mapped_column(Integer, server_default="0")
    priority: Mapped[int] = mapped_column(Integer, server_default="0")  # higher: sooner
    caller_email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    media_url: Mapped[str | None] = mapped_column(String(1024))

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - read once by the mapper

    # lazy="raise": an accidental lazy load would do I/O outside the store's transaction
    # handling (and fail under asyncio anyway); timelines are queried explicitly.
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", lazy="raise", order_by="CaseEvent.id"
    )


class CaseEvent(Base):
    __tablename__ = "case_events"
    __table_args__ = (
        Index("ix_case_events_case_id", "case_id", "id"),
        # The callbacks owed (回拨) are found by kind across all cases (revision 0003).
        Index("ix_case_events_kind", "kind", "case_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    actor: Mapped[str] = mapped_column(String(64), default="system")

    case: Mapped[Case] = relationship(back_populates="events", lazy="raise")


class CaseCounter(Base):
    """One row per centre-local day; ``last`` is the last sequence handed out that day.

    Incremented in the transaction that inserts the case, so a rolled-back insert rolls the
    counter back too: numbers are gap-free, not merely unique.
    """

    __tablename__ = "case_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)  # YYYYMMDD
    last: Mapped[int] = mapped_column(Integer)


class Department(Base):
    """A node of the dispatch tree: a level of government (省/市/县区/乡镇街道/村社区), a
    functional agency under one, or a public-service company (water, power …)."""

    __tablename__ = "departments"
    __table_args__ = (Index("ix_departments_parent", "parent_code"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())


class AuditEntry(Base):
    """Who saw a caller's details unmasked, when, for which case and why.

    No foreign key to ``cases``: the trail must outlive the case it is about."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_case", "case_number", "id"),
                      Index("ix_audit_log_at", "at"))

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    case_number: Mapped[str | None] = mapped_column(String(14))
    reason: Mapped[str] = mapped_column(Text)


class StoreSetting(Base):
    """Facts about the database every node must agree on, by name: ``caller_key`` is the
    fingerprint of the secret key its caller details are encrypted with (written by the
    first node to open it; ``CaseStore.open`` refuses another key)."""

    __tablename__ = "store_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
