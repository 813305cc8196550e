"""What the guardrails watch: running experiments with guardrails, read from the control DB.

Plain frozen values, so the warehouse side (which computes aggregates) needs no session
and the evaluation can be tested without any database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from exp_pipeline.control.models import Experiment


@dataclass(frozen=True)
class GuardrailSpec:
    """One guardrail with the definition of the metric it watches."""

    metric_key: str
    metric: dict[str, Any]  # the catalog definition (kind, events, direction...)
    threshold: float
    action: str  # pause | rollback
    observation_window_minutes: int | None
    min_sample: int | None
    method: str  # threshold | sequential

    @property
    def direction(self) -> str:
        """Which side is good; only ratio and continuous metrics say, others count harm up."""
        return self.metric.get("direction", "lower_is_better")


@dataclass(frozen=True)
class GuardrailTarget:
    """A running experiment and its guardrails."""

    experiment_id: int
    key: str
    flag_key: str
    start_utc: datetime
    end_utc: datetime | None
    allocation: dict[str, float]  # variant -> rollout percentage, control first
    guardrails: tuple[GuardrailSpec, ...]


def running_targets(session: Session, limit: int | None = None) -> list[GuardrailTarget]:
    """Running, live experiments with at least one guardrail, ordered by key."""
    query = (
        select(Experiment)
        .where(
            Experiment.deleted.is_(False),
            Experiment.status == "running",
            Experiment.guardrails.any(),
        )
        .options(
            selectinload(Experiment.variants),
            selectinload(Experiment.metrics),
            selectinload(Experiment.guardrails),
        )
        .order_by(Experiment.key)
    )
    if limit is not None:
        query = query.limit(limit)
    targets = []
    for experiment in session.scalars(query):
        metrics = {m.key: m.definition for m in experiment.metrics}
        variants = sorted(experiment.variants, key=lambda v: (v.key != "control", v.position))
        targets.append(
            GuardrailTarget(
                experiment_id=experiment.id,
                key=experiment.key,
                flag_key=experiment.feature_flag.key,
                start_utc=experiment.start_date,
                end_utc=experiment.end_date,
                allocation={v.key: v.rollout_percentage for v in variants},
                guardrails=tuple(
                    GuardrailSpec(
                        metric_key=g.metric_key,
                        metric=metrics[g.metric_key],
                        threshold=g.threshold,
                        action=g.action,
                        observation_window_minutes=g.observation_window_minutes,
                        min_sample=g.definition.get("min_sample"),
                        method=g.definition.get("method", "threshold"),
                    )
                    for g in experiment.guardrails
                ),
            )
        )
    return targets
