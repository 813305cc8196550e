"""Experiment definitions as the analysis transforms read them from the warehouse snapshot.

Windows arrive here as UTC instants (the snapshot stores them so); an open-ended
experiment is analysed up to `as_of`, which the caller fixes once per run so every
transform of the run sees the same window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from exp_pipeline.errors import ExpPipelineError


@dataclass(frozen=True)
class ExperimentDefinition:
    """One experiment of the snapshot, with a closed analysis window."""

    key: str
    flag_key: str
    status: str
    timezone: str
    start_utc: datetime
    end_utc: datetime
    open_ended: bool
    variants: tuple[str, ...]  # control first, in catalog order
    metrics: tuple[dict[str, Any], ...]  # catalog definitions, primary first
    allocation: dict[str, float]  # variant -> rollout percentage
    subject_type: str = "user"  # the id assignment hashes: a person's, or a group type's
    # Context attributes to break the results down by: (attribute path, pooling), in order.
    segments: tuple[tuple[str, bool], ...] = ()

    @property
    def control(self) -> str:
        return "control"

    def local_days(self) -> list[date]:
        """Every calendar day of the window in the experiment's timezone, both ends included."""
        tz = ZoneInfo(self.timezone)
        first = self.start_utc.astimezone(tz).date()
        last = self.end_utc.astimezone(tz).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def metric(self, key: str) -> dict[str, Any]:
        for metric in self.metrics:
            if metric["key"] == key:
                return metric
        raise ExpPipelineError(f"experiment {self.key!r} has no metric {key!r}")


def experiment_keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Keys of the snapshot's experiments that have started (drafts have no window)."""
    rows = con.execute(
        "SELECT experiment_key FROM experiment_definitions WHERE start_utc IS NOT NULL "
        "ORDER BY experiment_key"
    ).fetchall()
    return [r[0] for r in rows]


def read_experiment(
    con: duckdb.DuckDBPyConnection, key: str, as_of: datetime
) -> ExperimentDefinition:
    """The snapshot's definition of experiment `key`, its window closed at `as_of` if open."""
    row = con.execute(
        "SELECT feature_flag_key, status, timezone, start_utc, end_utc, subject_type "
        "FROM experiment_definitions WHERE experiment_key = ?",
        [key],
    ).fetchone()
    if row is None:
        raise ExpPipelineError(
            f"experiment {key!r} is not in the definitions snapshot "
            "(materialise experiment_definitions first)"
        )
    flag_key, status, timezone, start_utc, end_utc, subject_type = row
    if start_utc is None:
        raise ExpPipelineError(f"experiment {key!r} is a draft: it has no start date yet")
    allocation = dict(
        con.execute(
            "SELECT variant_key, rollout_percentage FROM experiment_variants "
            "WHERE experiment_key = ? ORDER BY position",
            [key],
        ).fetchall()
    )
    variants = list(allocation)
    metrics = [
        json.loads(r[0])
        for r in con.execute(
            "SELECT definition FROM experiment_metrics WHERE experiment_key = ? ORDER BY position",
            [key],
        ).fetchall()
    ]
    variants.sort(key=lambda v: v != "control")  # control first, others in catalog order
    segments = con.execute(
        "SELECT attribute, pooling FROM experiment_segments WHERE experiment_key = ? "
        "ORDER BY position",
        [key],
    ).fetchall()
    return ExperimentDefinition(
        key=key,
        flag_key=flag_key,
        status=status,
        timezone=timezone,
        start_utc=start_utc.astimezone(UTC),
        end_utc=(end_utc or as_of).astimezone(UTC),
        open_ended=end_utc is None,
        variants=tuple(variants),
        metrics=tuple(metrics),
        allocation={v: allocation[v] for v in variants},
        subject_type=subject_type,
        segments=tuple((attribute, bool(pooling)) for attribute, pooling in segments),
    )
