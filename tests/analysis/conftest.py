"""Fixtures for the analysis tests: a warehouse loaded from a few events and a catalog.

Each test states its events and its catalog; the fixture loads the events with the real
loader, syncs the catalog through a real (SQLite) control database and writes the
definitions snapshot, exactly as the asset graph does, then hands back the warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from exp_pipeline.analysis.definitions import ExperimentDefinition, read_experiment
from exp_pipeline.catalog import parse_catalog
from exp_pipeline.control.db import ControlDatabase, sqlite_url
from exp_pipeline.control.queries import describe, live_experiments
from exp_pipeline.control.sync import sync_catalog
from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.definitions_snapshot import write_definitions_snapshot
from exp_pipeline.warehouse.loader import load_files

AS_OF = datetime(2030, 1, 1, tzinfo=UTC)


def event(
    name: str,
    who: str,
    when: str,
    *,
    flag: str | None = None,
    variant: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """One landing record; `flag`/`variant` add a `$feature/<flag>` property."""
    props = dict(properties)
    if flag is not None:
        props[f"$feature/{flag}"] = variant
    return {"event": name, "distinct_id": who, "timestamp": when, "properties": props}


def flag_called(who: str, when: str, flag: str, variant: str) -> dict[str, Any]:
    """A `$feature_flag_called` record: the trend exposure signal."""
    return event(
        "$feature_flag_called",
        who,
        when,
        **{"$feature_flag": flag, "$feature_flag_response": variant},
    )


def reference_funnel_events(flag: str) -> list[dict[str, Any]]:
    """The reference funnel: control steps [2, 2], test steps [3, 1] ($pageview, $pageleave)."""
    events = []
    for who in ("c1", "c2"):
        events.append(event("$pageview", who, "2020-01-02T00:00:00Z", flag=flag, variant="control"))
        events.append(
            event("$pageleave", who, "2020-01-02T00:01:00Z", flag=flag, variant="control")
        )
    for who in ("t1", "t2", "t3"):
        events.append(event("$pageview", who, "2020-01-02T00:00:00Z", flag=flag, variant="test"))
    events.append(event("$pageleave", "t1", "2020-01-02T00:02:00Z", flag=flag, variant="test"))
    return events


Analysed = Callable[[dict[str, Any], list[dict[str, Any]]], ExperimentDefinition]


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with open_warehouse(tmp_path / "w.duckdb") as con:
        yield con


@pytest.fixture
def analysed(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> Analysed:
    """Load `events`, sync `catalog` (one experiment), snapshot; return its definition."""

    def setup(catalog: dict[str, Any], events: list[dict[str, Any]]) -> ExperimentDefinition:
        landing = tmp_path / "landing"
        landing.mkdir(exist_ok=True)
        path = landing / f"events-{len(list(landing.iterdir()))}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        report = load_files(warehouse, [path], bot_pattern="bot")
        assert report.summary()["quarantined_total"] == 0
        db = ControlDatabase(sqlite_url(tmp_path / "control.db"))
        with db.session() as session:
            sync_catalog(session, parse_catalog(catalog))
        with db.session() as session:
            described = [describe(e) for e in live_experiments(session)]
        db.dispose()
        write_definitions_snapshot(warehouse, described, AS_OF)
        key = catalog["experiments"][0]["key"]
        return read_experiment(warehouse, key, AS_OF)

    return setup
