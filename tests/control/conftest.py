"""Fixtures for the control database tests: a migrated database and small catalogs.

Every test gets a fresh control database through `control_url` (tests/conftest.py), so
each one runs on SQLite and on PostgreSQL. Catalogs are built as plain dicts and parsed
with the real catalog parser, so sync sees exactly what `experiments sync` would.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from exp_pipeline.catalog import parse_catalog
from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.control.models import Base, DecisionLog, Experiment
from exp_pipeline.control.sync import SyncReport, sync_catalog

Row = tuple[Any, ...]

EXPERIMENT_A: dict[str, Any] = {
    "key": "exp-a",
    "name": "Experiment A",
    "description": "First test experiment.",
    "feature_flag_key": "flag-a",
    "variants": [
        {"key": "control", "name": "Control", "rollout_percentage": 50},
        {"key": "test", "name": "Test", "rollout_percentage": 50},
    ],
    "metrics": [
        {"key": "signup", "kind": "funnel", "steps": ["$pageview", "signup"]},
        {"key": "clicks", "kind": "trend", "event": "click"},
    ],
    "guardrails": [
        {"metric": "clicks", "threshold": 0.2, "observation_window_minutes": 60, "action": "pause"}
    ],
}

EXPERIMENT_B: dict[str, Any] = {
    "key": "exp-b",
    "name": "Experiment B",
    "feature_flag_key": "flag-b",
    "metrics": [{"key": "purchases", "kind": "trend", "event": "purchase"}],
}


def experiment(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of catalog entry `base` with top-level fields replaced."""
    entry = copy.deepcopy(base)
    entry.update(copy.deepcopy(changes))
    return entry


def catalog(*experiments: dict[str, Any], timezone: str = "UTC") -> dict[str, Any]:
    """A raw catalog document (as YAML would give it) holding `experiments`."""
    return {"timezone": timezone, "experiments": [copy.deepcopy(e) for e in experiments]}


class Control:
    """A migrated control database with helpers to sync catalogs and read rows back."""

    def __init__(self, db: ControlDatabase) -> None:
        self.db = db

    def sync(self, raw: dict[str, Any], *, prune: bool = False) -> SyncReport:
        """Parse `raw` and sync it in one transaction, as `experiments sync` does."""
        parsed = parse_catalog(raw)
        with self.db.session() as session:
            return sync_catalog(session, parsed, prune=prune)

    def snapshot(self) -> dict[str, list[Row]]:
        """Every row of every table, timestamps included, in primary-key order."""
        with self.db.engine.connect() as conn:
            return {
                table.name: [
                    tuple(row)
                    for row in conn.execute(
                        select(table).order_by(*table.primary_key.columns)
                    ).all()
                ]
                for table in Base.metadata.sorted_tables
            }

    def count(self, table: str) -> int:
        return len(self.snapshot()[table])

    def log(self) -> list[tuple[str, str, str | None, str | None, str, str, dict[str, Any]]]:
        """The decision log as (experiment_key, action, from, to, actor, reason, details)."""
        with self.db.session() as session:
            rows = session.scalars(select(DecisionLog).order_by(DecisionLog.id)).all()
            return [
                (
                    r.experiment_key,
                    r.action,
                    r.from_status,
                    r.to_status,
                    r.actor,
                    r.reason,
                    r.details,
                )
                for r in rows
            ]

    def state(self, key: str) -> dict[str, Any]:
        """The live experiment `key` with its flag and children, as plain values."""
        with self.db.session() as session:
            e = session.scalars(
                select(Experiment).where(Experiment.key == key, Experiment.deleted.is_(False))
            ).one()
            return {
                "name": e.name,
                "description": e.description,
                "status": e.status,
                "start_date": e.start_date,
                "end_date": e.end_date,
                "timezone": e.timezone,
                "flag": (e.feature_flag.key, e.feature_flag.active, e.feature_flag.served_variant),
                "variants": [(v.key, v.name, v.rollout_percentage, v.position) for v in e.variants],
                "metrics": [(m.key, m.kind, m.position, m.definition) for m in e.metrics],
                "guardrails": [
                    (
                        g.metric_key,
                        g.threshold,
                        g.observation_window_minutes,
                        g.action,
                        g.position,
                        g.definition,
                    )
                    for g in e.guardrails
                ],
            }

    def experiments(self) -> list[tuple[str, str, str, bool, bool, bool]]:
        """Every experiment row, deleted ones included, as
        (key, name, flag key, deleted, flag deleted, flag active) in id order."""
        with self.db.session() as session:
            rows = session.scalars(select(Experiment).order_by(Experiment.id)).all()
            return [
                (
                    e.key,
                    e.name,
                    e.feature_flag.key,
                    e.deleted,
                    e.feature_flag.deleted,
                    e.feature_flag.active,
                )
                for e in rows
            ]


@pytest.fixture
def db(control_url: str) -> Iterator[ControlDatabase]:
    """A control database migrated on first use, on each backend."""
    database = ControlDatabase(control_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def control(db: ControlDatabase) -> Control:
    return Control(db)
