"""SQLAlchemy 2 models of the control database.

The control database is the source of truth for which experiments run: feature-flag
services read it and the guardrail sensor writes it. The schema is created and changed
only by the Alembic migrations beside this module; these models describe it for queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Explicit constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUSES = ("draft", "in_review", "approved", "running", "paused", "completed")


# Partial unique indexes: a soft-deleted row frees its key (and name) for reuse.
_LIVE = text("NOT deleted")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class FeatureFlag(Base):
    """A feature flag. Soft-deleted flags free their key for reuse (partial unique index)."""

    __tablename__ = "feature_flags"
    __table_args__ = (
        Index(
            "uq_feature_flags_key_live",
            "key",
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    # Assignment is live only while the experiment runs.
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    # After completion or rollback, the one variant served to everyone (None: none).
    served_variant: Mapped[str | None] = mapped_column(String(255))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        Index(
            "uq_experiments_key_live",
            "key",
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        Index(
            "uq_experiments_name_live",
            "name",
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    feature_flag_id: Mapped[int] = mapped_column(ForeignKey("feature_flags.id"))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    start_date: Mapped[datetime | None]
    end_date: Mapped[datetime | None]
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Who answers for the experiment (the catalog's `owner`, else whoever submitted it);
    # an owner never approves their own experiment.
    owner: Mapped[str | None] = mapped_column(String(255))
    # Bumped when a reviewed definition changes: approvals of earlier rounds no longer count.
    review_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Which id flag decisions hash (`user`, `cookie`, `device` or a group type).
    subject_type: Mapped[str] = mapped_column(String(100), default="user", server_default="user")
    # Share of subjects (0-100] in the experiment; the rest get the default variant.
    traffic_percentage: Mapped[float] = mapped_column(Float, default=100.0, server_default="100")
    # Part of every decision id: bumped whenever the variant a subject gets could change
    # (variants, allocation, flag or subject type), never by a traffic change.
    assignment_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The catalog's `segments` (context attributes to break results down by), as JSON.
    segments: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    feature_flag: Mapped[FeatureFlag] = relationship(lazy="joined")
    variants: Mapped[list[Variant]] = relationship(
        order_by="Variant.position", cascade="all, delete-orphan"
    )
    metrics: Mapped[list[Metric]] = relationship(
        order_by="Metric.position", cascade="all, delete-orphan"
    )
    guardrails: Mapped[list[Guardrail]] = relationship(
        order_by="Guardrail.position", cascade="all, delete-orphan"
    )
    outcome: Mapped[Outcome | None] = relationship(uselist=False)
    forced: Mapped[list[ForcedAssignment]] = relationship(
        order_by="ForcedAssignment.subject_id", cascade="all, delete-orphan"
    )


class Variant(Base):
    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("experiment_id", "key", name="uq_variants_experiment_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    rollout_percentage: Mapped[float] = mapped_column(Float)
    position: Mapped[int] = mapped_column(Integer)


class ForcedAssignment(Base):
    """A QA override: this subject always gets this variant, outside the random sample."""

    __tablename__ = "forced_assignments"
    __table_args__ = (
        UniqueConstraint("experiment_id", "subject_id", name="uq_forced_assignments_subject"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    subject_id: Mapped[str] = mapped_column(String(255))
    variant_key: Mapped[str] = mapped_column(String(255))


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("experiment_id", "key", name="uq_metrics_experiment_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20))
    # Position 0 is the primary metric.
    position: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]


class Guardrail(Base):
    __tablename__ = "guardrails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    metric_key: Mapped[str] = mapped_column(String(255))
    threshold: Mapped[float] = mapped_column(Float)
    observation_window_minutes: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]


class Approval(Base):
    """One reviewer's approval of one review round of an experiment."""

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint(
            "experiment_id", "review_round", "approver", name="uq_approvals_experiment_round"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    review_round: Mapped[int] = mapped_column(Integer)
    approver: Mapped[str] = mapped_column(String(255))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)


class Outcome(Base):
    """How an experiment ended: one row per completed experiment."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), unique=True
    )
    outcome: Mapped[str] = mapped_column(String(20))  # "shipped" | "rollback" | "inconclusive"
    winner: Mapped[str | None] = mapped_column(String(255))
    decided_by: Mapped[str] = mapped_column(String(255))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The decision that ended the experiment; unique, so one decision ends it once.
    decision_key: Mapped[str] = mapped_column(String(255), unique=True)


class GuardrailSnapshot(Base):
    """The latest per-variant guardrail aggregates of one running experiment.

    Written by the `guardrail_metrics` asset (which reads the DuckDB warehouse) and read
    by the guardrail sensor, which never opens DuckDB. `sequential_state` carries the
    always-valid p-values between looks.
    """

    __tablename__ = "guardrail_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), unique=True
    )
    computed_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    sequential_state: Mapped[dict[str, Any]] = mapped_column(default=dict)


class GuardrailTrigger(Base):
    """One guardrail firing (an action) or a hold on unhealthy data (a warning)."""

    __tablename__ = "guardrail_triggers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unique and never null: a decision is written once, however often it is evaluated.
    decision_key: Mapped[str] = mapped_column(String(255), unique=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    experiment_key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20))  # "action" | "warning"
    action: Mapped[str] = mapped_column(String(20))  # "pause" | "rollback" | "hold"
    metric_key: Mapped[str | None] = mapped_column(String(255))
    variant: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    observation_window_minutes: Mapped[int | None] = mapped_column(Integer)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DecisionLog(Base):
    """Append-only audit trail: every change of an experiment's status or definition."""

    __tablename__ = "decision_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    experiment_key: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Setting(Base):
    """Global settings, such as the `experiments_enabled` kill switch."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
