"""Decision ids at load: an exposure event whose variant contradicts the decision id it
carries is quarantined with that reason; consistent ones, of any assignment version up to
the current one, and flags the warehouse does not know are loaded as they are."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from exp_pipeline.warehouse.definitions_snapshot import write_definitions_snapshot
from tests.warehouse.conftest import Warehouse, unaccounted

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


def expected_id(experiment: str, subject: str, variant: str, version: int) -> str:
    """docs/flags.md, written out: first 32 hex chars of SHA-256 of the dotted fields."""
    return hashlib.sha256(f"{experiment}.{subject}.{variant}.{version}".encode()).hexdigest()[:32]


def define(wh: Warehouse, assignment_version: int) -> None:
    experiment = {
        "key": "exp-a",
        "name": "A",
        "status": "running",
        "feature_flag_key": "flag-a",
        "flag_active": True,
        "window": {"start": "2026-11-01T00:00:00Z", "end": None},
        "timezone": "UTC",
        "assignment_version": assignment_version,
        "variants": [
            {"key": "control", "name": None, "rollout_percentage": 50},
            {"key": "test", "name": None, "rollout_percentage": 50},
        ],
        "metrics": [{"key": "m", "kind": "trend", "event": "click"}],
        "guardrails": [],
        "outcome": None,
    }
    write_definitions_snapshot(wh.con, [experiment], AS_OF)


def called(subject: str, flag: str, variant: str, decision: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"$feature_flag": flag, "$feature_flag_response": variant}
    if decision is not None:
        properties["$feature_flag_decision_id"] = decision
    return {
        "event": "$feature_flag_called",
        "distinct_id": subject,
        "timestamp": "2026-11-02T10:00:00Z",
        "properties": properties,
    }


def test_events_contradicting_their_decision_are_quarantined(wh: Warehouse) -> None:
    define(wh, assignment_version=2)
    forged = expected_id("exp-a", "u3", "control", 2)
    records = [
        called("u1", "flag-a", "test", expected_id("exp-a", "u1", "test", 1)),
        called("u2", "flag-a", "control", expected_id("exp-a", "u2", "control", 2)),
        called("u3", "flag-a", "test", forged),
        called("u4", "flag-a", "test", expected_id("exp-a", "u4", "test", 3)),
        called("u5", "flag-a", "test", None),
        called("u6", "flag-unknown", "test", "not-checked"),
    ]
    result = wh.load_one(wh.write_jsonl("2026-11-02/a.jsonl", records))
    assert result.quarantined == {"decision_mismatch": 2}
    assert (result.rows_read, result.rows_loaded, unaccounted(result)) == (6, 4, 0)
    assert [(line, reason, detail) for line, reason, detail, _ in wh.quarantine()] == [
        (
            3,
            "decision_mismatch",
            f'variant "test" contradicts decision id "{forged}" of experiment "exp-a"',
        ),
        (
            4,
            "decision_mismatch",
            f'variant "test" contradicts decision id '
            f'"{expected_id("exp-a", "u4", "test", 3)}" of experiment "exp-a"',
        ),
    ]
    assert json.loads(wh.quarantine()[0][3]) == records[2]
    assert [s for _, s in wh.event_lines()] == ["u1", "u2", "u5", "u6"]
    subjects = wh.query("SELECT distinct_id FROM flag_assignments ORDER BY distinct_id")
    assert [s for (s,) in subjects] == ["u1", "u2", "u5", "u6"]
    assert wh.scalar("SELECT quarantined FROM loaded_files") == 2


def test_without_definitions_in_the_warehouse_nothing_is_checked(wh: Warehouse) -> None:
    records = [called("u1", "flag-a", "test", expected_id("exp-a", "u1", "control", 1))]
    result = wh.load_one(wh.write_jsonl("2026-11-02/a.jsonl", records))
    assert (result.rows_loaded, result.quarantined) == (1, {})
