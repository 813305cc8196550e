"""Fixtures for the guardrail tests: a real warehouse and a real control database.

`world(catalog, events)` loads the events with the real loader into DuckDB and syncs the
catalog into the control database (SQLite or PostgreSQL, per `control_url`), exactly as
the asset graph does; the tests then run the real checks against both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from exp_pipeline.catalog import parse_catalog
from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.control.sync import sync_catalog
from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.loader import load_files

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def guarded_experiment(
    key: str,
    *,
    numerator: str = "app_error",
    threshold: float = 0.10,
    action: str = "pause",
    window: int | None = 60,
    **guardrail: Any,
) -> dict[str, Any]:
    """A running experiment whose ratio metric numerator/app_exposure is guarded."""
    return {
        "key": key,
        "name": key,
        "feature_flag_key": key,
        "start_date": "2026-11-01T00:00:00Z",
        "metrics": [
            {
                "key": "error_rate",
                "kind": "ratio",
                "numerator": numerator,
                "denominator": "app_exposure",
                "direction": "lower_is_better",
            }
        ],
        "guardrails": [
            {
                "metric": "error_rate",
                "threshold": threshold,
                "observation_window_minutes": window,
                "action": action,
                **guardrail,
            }
        ],
    }


def flagged(name: str, who: str, when: str, flag: str, variant: str, **props: Any) -> dict:
    return {
        "event": name,
        "distinct_id": who,
        "timestamp": when,
        "properties": {f"$feature/{flag}": variant, **props},
    }


World = Callable[[list[dict[str, Any]], list[dict[str, Any]]], ControlDatabase]


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with open_warehouse(tmp_path / "w.duckdb") as con:
        yield con


@pytest.fixture
def world(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, control_url: str
) -> Iterator[World]:
    databases: list[ControlDatabase] = []

    def setup(experiments: list[dict[str, Any]], events: list[dict[str, Any]]) -> ControlDatabase:
        path = tmp_path / f"events-{len(databases)}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        load_files(warehouse, [path], bot_pattern="bot")
        db = ControlDatabase(control_url)
        with db.session() as session:
            sync_catalog(session, parse_catalog({"experiments": experiments}))
        databases.append(db)
        return db

    yield setup
    for db in databases:
        db.dispose()
