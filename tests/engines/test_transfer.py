"""The DuckDB side of the engine layer: staged rows, and exporting inputs only when changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from exp_pipeline.engines.base import DuckDBEngine
from exp_pipeline.engines.spark import INPUT_TABLES
from exp_pipeline.engines.transfer import FINGERPRINT_FILE, refresh_inputs
from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.definitions_snapshot import write_definitions_snapshot
from exp_pipeline.warehouse.loader import load_files


def test_staged_rows_carry_values_as_data_with_their_types() -> None:
    rows = [
        (1, "it's", datetime(2026, 11, 1, 12, tzinfo=UTC)),
        (2, None, datetime(2026, 11, 2, tzinfo=UTC)),
    ]
    columns = {"look": "INTEGER", "name": "VARCHAR", "seen_at": "TIMESTAMPTZ"}
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        engine = DuckDBEngine(con)
        with engine.staged_rows("staged", columns, rows):
            assert engine.fetch("SELECT * FROM staged ORDER BY look", {}) == rows
        with engine.staged_rows("staged", columns, []):
            assert engine.fetch("SELECT count(*) FROM staged", {}) == [(0,)]
        assert not con.execute(
            "SELECT * FROM duckdb_tables() WHERE table_name = 'staged'"
        ).fetchall()


def _events(path: Path, who: str) -> Path:
    record = {
        "event": "$pageview",
        "distinct_id": who,
        "timestamp": "2026-11-02T10:00:00Z",
        "properties": {"$feature/f": "control"},
    }
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def test_inputs_are_exported_again_only_after_they_change(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    with open_warehouse(tmp_path / "w.duckdb") as con:
        load_files(con, [_events(tmp_path / "a.jsonl", "u1")], bot_pattern="bot")
        write_definitions_snapshot(con, [], datetime(2026, 11, 3, tzinfo=UTC))
        assert refresh_inputs(con, inputs)
        assert sorted(p.name for p in inputs.iterdir()) == sorted(
            [FINGERPRINT_FILE, *(f"{t}.parquet" for t in INPUT_TABLES)]
        )
        assert not refresh_inputs(con, inputs)  # nothing changed: nothing written
        load_files(con, [_events(tmp_path / "b.jsonl", "u2")], bot_pattern="bot")
        assert refresh_inputs(con, inputs)
        exported = con.execute(
            f"SELECT count(*) FROM read_parquet('{inputs / 'events.parquet'}')"
        ).fetchall()
        assert exported == [(2,)]
