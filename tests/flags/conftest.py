"""Fixtures for the flag tests: hand-built snapshots and a real control database.

Hand-built snapshots pin every field a rule reads, so each reason can be reached alone;
the control database is migrated and synced with the real catalog parser and sync, so
snapshots built from it are exactly what `flags export` writes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from exp_pipeline.catalog import parse_catalog
from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.control.lifecycle import get_live_experiment, transition
from exp_pipeline.control.sync import sync_catalog

FLAG = "flag-a"

ENTRY: dict[str, Any] = {
    "experiment_key": "exp-a",
    "status": "running",
    "seed": "exp-a",
    "traffic": 1.0,
    "variants": [{"key": "control", "weight": 0.5}, {"key": "test", "weight": 0.5}],
    "default_variant": "control",
    "served_variant": None,
    "outcome": None,
    "forced": {},
    "subject_type": "user",
    "assignment_version": 1,
}


def snapshot(*, experiments_enabled: bool = True, **entry_changes: Any) -> dict[str, Any]:
    """A valid format-1 snapshot holding FLAG, with its entry's fields replaced."""
    entry = copy.deepcopy(ENTRY)
    entry.update(copy.deepcopy(entry_changes))
    return {
        "format": 1,
        "version": 1,
        "generated_at": "2026-11-20T12:00:00Z",
        "decided_at": "2026-11-20T11:59:00Z",
        "experiments_enabled": experiments_enabled,
        "flags": {FLAG: entry},
    }


def running_catalog(**changes: Any) -> dict[str, Any]:
    """A raw catalog with exp-a (flag-a, 50/50) started in the past, so sync runs it."""
    experiment = {
        "key": "exp-a",
        "name": "Experiment A",
        "feature_flag_key": FLAG,
        "start_date": "2026-11-01T00:00:00Z",
        "metrics": [{"key": "clicks", "kind": "trend", "event": "click"}],
        **changes,
    }
    return {"timezone": "UTC", "experiments": [experiment]}


class Control:
    """A migrated control database with the few writes the flag tests need."""

    def __init__(self, db: ControlDatabase) -> None:
        self.db = db

    def sync(self, raw: dict[str, Any], *, prune: bool = False) -> None:
        with self.db.session() as session:
            sync_catalog(session, parse_catalog(raw), prune=prune)

    def act(self, action: str, key: str = "exp-a", **kwargs: Any) -> None:
        """Apply one lifecycle transition in its own transaction, as the sensor would."""
        with self.db.session() as session:
            transition(session, get_live_experiment(session, key), action, **kwargs)


@pytest.fixture
def control(control_url: str) -> Iterator[Control]:
    """A fresh control database, on SQLite (and PostgreSQL when the suite has one)."""
    database = ControlDatabase(control_url)
    try:
        yield Control(database)
    finally:
        database.dispose()
