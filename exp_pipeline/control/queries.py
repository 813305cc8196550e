"""Read-side views of the control database for the CLI and the experiment snapshot."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from exp_pipeline.control.models import Experiment
from exp_pipeline.control.sync import variant_rows
from exp_pipeline.timeutil import iso_utc


def live_experiments(session: Session) -> list[Experiment]:
    """Experiments that are not deleted, with their children loaded, ordered by key."""
    return list(
        session.scalars(
            select(Experiment)
            .where(Experiment.deleted.is_(False))
            .options(
                selectinload(Experiment.variants),
                selectinload(Experiment.forced),
                selectinload(Experiment.metrics),
                selectinload(Experiment.guardrails),
                selectinload(Experiment.outcome),
            )
            .order_by(Experiment.key)
        )
    )


def describe(experiment: Experiment) -> dict[str, Any]:
    """A JSON-ready summary of one experiment, as `experiments list --json` prints it."""
    outcome = experiment.outcome
    return {
        "key": experiment.key,
        "name": experiment.name,
        "status": experiment.status,
        "feature_flag_key": experiment.feature_flag.key,
        "flag_active": experiment.feature_flag.active,
        "timezone": experiment.timezone,
        "window": {"start": iso_utc(experiment.start_date), "end": iso_utc(experiment.end_date)},
        "subject_type": experiment.subject_type,
        "traffic_percentage": experiment.traffic_percentage,
        "assignment_version": experiment.assignment_version,
        "variants": variant_rows(experiment.variants),
        "forced": {f.subject_id: f.variant_key for f in experiment.forced},
        "metrics": [m.definition for m in experiment.metrics],
        "guardrails": [g.definition for g in experiment.guardrails],
        "segments": experiment.segments,
        "outcome": None
        if outcome is None
        else {"outcome": outcome.outcome, "winner": outcome.winner},
    }


def analysable_experiment_keys(session: Session) -> list[str]:
    """Keys of live experiments that have started: those with a window to analyse."""
    return list(
        session.scalars(
            select(Experiment.key)
            .where(Experiment.deleted.is_(False), Experiment.status != "draft")
            .order_by(Experiment.key)
        )
    )
