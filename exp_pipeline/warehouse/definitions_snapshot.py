"""Snapshotting experiment definitions from the control database into the warehouse.

Transforms join events to experiments in SQL, so they need the definitions beside the
events: this writes them as small tables, replaced whole in one transaction, so every
transform in a run sees one consistent version of the catalog.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

TABLES: dict[str, str] = {
    "experiment_definitions": """
        experiment_key   VARCHAR PRIMARY KEY,
        name             VARCHAR NOT NULL,
        status           VARCHAR NOT NULL,
        feature_flag_key VARCHAR NOT NULL,
        flag_active      BOOLEAN NOT NULL,
        start_utc        TIMESTAMPTZ,          -- window start, a UTC instant (null: draft)
        end_utc          TIMESTAMPTZ,          -- window end, a UTC instant (null: open-ended)
        timezone         VARCHAR NOT NULL,     -- IANA zone of calendar days
        primary_metric   VARCHAR NOT NULL,
        outcome          VARCHAR,
        winner           VARCHAR,
        snapshot_at      TIMESTAMPTZ NOT NULL, -- when the control database was read
        assignment_version INTEGER NOT NULL,   -- decision ids of versions 1..this are valid
        subject_type     VARCHAR NOT NULL      -- the id assignment hashes: user, a group type
    """,
    "experiment_variants": """
        experiment_key     VARCHAR NOT NULL,
        variant_key        VARCHAR NOT NULL,
        name               VARCHAR,
        rollout_percentage DOUBLE NOT NULL,
        position           INTEGER NOT NULL
    """,
    "experiment_metrics": """
        experiment_key VARCHAR NOT NULL,
        metric_key     VARCHAR NOT NULL,
        kind           VARCHAR NOT NULL,
        position       INTEGER NOT NULL,
        definition     JSON NOT NULL
    """,
    "experiment_guardrails": """
        experiment_key             VARCHAR NOT NULL,
        metric_key                 VARCHAR NOT NULL,
        threshold                  DOUBLE NOT NULL,
        observation_window_minutes INTEGER,
        action                     VARCHAR NOT NULL,
        definition                 JSON NOT NULL
    """,
    "experiment_segments": """
        experiment_key VARCHAR NOT NULL,
        attribute      VARCHAR NOT NULL,      -- context attribute path, e.g. device.platform
        pooling        BOOLEAN NOT NULL,      -- partial pooling of the primary funnel's lift
        position       INTEGER NOT NULL
    """,
}
_DDL = [f"CREATE OR REPLACE TABLE {name} ({columns})" for name, columns in TABLES.items()]


def write_definitions_snapshot(
    con: duckdb.DuckDBPyConnection, experiments: list[dict[str, Any]], snapshot_at: datetime
) -> None:
    """Replace the definition tables with `experiments` (as `queries.describe` gives them)."""
    con.execute("BEGIN TRANSACTION")
    try:
        for statement in _DDL:
            con.execute(statement)
        for e in experiments:
            outcome = e["outcome"] or {}
            con.execute(
                "INSERT INTO experiment_definitions "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    e["key"],
                    e["name"],
                    e["status"],
                    e["feature_flag_key"],
                    e["flag_active"],
                    e["window"]["start"],
                    e["window"]["end"],
                    e["timezone"],
                    e["metrics"][0]["key"],
                    outcome.get("outcome"),
                    outcome.get("winner"),
                    snapshot_at,
                    e["assignment_version"],
                    e.get("subject_type", "user"),  # the catalog's default
                ],
            )
            con.executemany(
                "INSERT INTO experiment_variants VALUES (?, ?, ?, ?, ?)",
                [
                    [e["key"], v["key"], v["name"], v["rollout_percentage"], i]
                    for i, v in enumerate(e["variants"])
                ],
            )
            con.executemany(
                "INSERT INTO experiment_metrics VALUES (?, ?, ?, ?, ?)",
                [
                    [e["key"], m["key"], m["kind"], i, json.dumps(m)]
                    for i, m in enumerate(e["metrics"])
                ],
            )
            if e["guardrails"]:
                con.executemany(
                    "INSERT INTO experiment_guardrails VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        [
                            e["key"],
                            g["metric"],
                            g["threshold"],
                            g["observation_window_minutes"],
                            g["action"],
                            json.dumps(g),
                        ]
                        for g in e["guardrails"]
                    ],
                )
            if e.get("segments"):
                con.executemany(
                    "INSERT INTO experiment_segments VALUES (?, ?, ?, ?)",
                    [
                        [e["key"], g["attribute"], g["pooling"], i]
                        for i, g in enumerate(e["segments"])
                    ],
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
