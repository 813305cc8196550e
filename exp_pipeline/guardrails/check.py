"""Guardrail checks: snapshot the aggregates, then evaluate and decide from the snapshots.

The two halves run apart in production: the `guardrail_metrics` asset (which may open
DuckDB) writes snapshots to the control database; the guardrail sensor (which must not)
evaluates them. `exp-pipeline guardrails check` runs both, once, for every running
experiment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
from sqlalchemy import select

from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.control.global_settings import get_setting
from exp_pipeline.control.models import GuardrailSnapshot
from exp_pipeline.engines.base import Warehouse
from exp_pipeline.guardrails.aggregates import compute_all_aggregates
from exp_pipeline.guardrails.decisions import Decision, apply_evaluation
from exp_pipeline.guardrails.evaluate import evaluate
from exp_pipeline.guardrails.targets import GuardrailTarget, running_targets

# Snapshots older than this are not acted on: the asset runs every 5 minutes.
DEFAULT_MAX_SNAPSHOT_AGE = timedelta(minutes=15)


def _enabled_targets(db: ControlDatabase, limit: int | None) -> list[GuardrailTarget] | None:
    """Running targets, or None when the kill switch is off."""
    with db.session() as session:
        if not get_setting(session, "experiments_enabled"):
            return None
        return running_targets(session, limit)


def snapshot_guardrails(
    warehouse: Warehouse, db: ControlDatabase, now: datetime, limit: int | None = None
) -> list[GuardrailTarget]:
    """Compute and store the aggregates of every running experiment with guardrails."""
    targets = _enabled_targets(db, limit) or []
    payloads = zip(targets, compute_all_aggregates(warehouse, targets, now), strict=True)
    with db.session() as session:
        for target, payload in payloads:
            row = session.scalars(
                select(GuardrailSnapshot).where(
                    GuardrailSnapshot.experiment_id == target.experiment_id
                )
            ).one_or_none()
            if row is None:
                session.add(
                    GuardrailSnapshot(
                        experiment_id=target.experiment_id, computed_at=now, payload=payload
                    )
                )
            else:
                row.computed_at, row.payload = now, payload
    return targets


def evaluate_snapshots(
    db: ControlDatabase,
    now: datetime,
    *,
    max_age: timedelta = DEFAULT_MAX_SNAPSHOT_AGE,
    limit: int | None = None,
) -> list[Decision]:
    """Evaluate the stored snapshot of every running experiment and write the decisions."""
    targets = _enabled_targets(db, limit)
    if targets is None:
        return []
    decisions = []
    for target in targets:
        with db.session() as session:
            snapshot = session.scalars(
                select(GuardrailSnapshot).where(
                    GuardrailSnapshot.experiment_id == target.experiment_id
                )
            ).one_or_none()
            if snapshot is None:
                decisions.append(Decision(target.key, "none", reason="no aggregates yet"))
                continue
            looked_at, payload, state = (
                snapshot.computed_at,
                snapshot.payload,
                dict(snapshot.sequential_state),
            )
        if now - looked_at > max_age:
            decisions.append(
                Decision(
                    target.key,
                    "stale",
                    reason=f"aggregates computed at {looked_at.isoformat()} are older than "
                    f"{max_age}; is the guardrail_metrics schedule running?",
                )
            )
            continue
        evaluation = evaluate(target, payload, state)
        if evaluation.sequential_state != state:
            with db.session() as session:
                row = session.scalars(
                    select(GuardrailSnapshot).where(
                        GuardrailSnapshot.experiment_id == target.experiment_id
                    )
                ).one()
                row.sequential_state = evaluation.sequential_state
        decisions.append(apply_evaluation(db, target.experiment_id, evaluation, looked_at))
    return decisions


def check_report(checked: int, decisions: list[Decision]) -> dict[str, Any]:
    """The `guardrails check --json` document."""
    acted = [d for d in decisions if d.outcome in ("paused", "rolled_back")]
    return {
        "checked": checked,
        "triggered": len(acted),
        "decisions": [d.as_dict() for d in decisions],
    }


def check_all_running_experiments(
    con: duckdb.DuckDBPyConnection, db: ControlDatabase, now: datetime
) -> dict[str, Any]:
    """Snapshot, evaluate and decide every running experiment once."""
    targets = snapshot_guardrails(con, db, now)
    decisions = evaluate_snapshots(db, now, max_age=timedelta.max)
    return check_report(len(targets), decisions)
