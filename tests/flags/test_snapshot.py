"""Snapshots built from a real control database: content, versioning, lifecycle and the
kill switch as `decide` sees them, and agreement with the JSON an application loads."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from exp_pipeline.control.global_settings import set_setting
from exp_pipeline.control.lifecycle import get_live_experiment, soft_delete
from exp_pipeline.control.models import DecisionLog
from exp_pipeline.errors import FlagError
from exp_pipeline.flags import (
    build_snapshot,
    decide,
    parse_snapshot,
    validate_snapshot,
    write_snapshot,
)
from exp_pipeline.timeutil import iso_utc

from .conftest import FLAG, Control, running_catalog, snapshot

GENERATED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SUBJECTS = [f"user-{i}" for i in range(10_000)]
THREE_WAY = [
    {"key": "control", "name": "Control", "rollout_percentage": 20},
    {"key": "a", "name": "A", "rollout_percentage": 30},
    {"key": "b", "name": "B", "rollout_percentage": 50},
]
DRAFT = {
    "key": "exp-b",
    "name": "Experiment B",
    "feature_flag_key": "flag-b",
    "metrics": [{"key": "clicks", "kind": "trend", "event": "click"}],
}


def current(control: Control) -> dict[str, Any]:
    with control.db.session() as session:
        return build_snapshot(session, generated_at=GENERATED_AT)


def test_the_snapshot_holds_every_live_flag_with_what_decide_needs(control: Control) -> None:
    raw = running_catalog(variants=THREE_WAY)
    raw["experiments"].append(DRAFT)
    control.sync(raw)
    with control.db.session() as session:
        log_rows, newest = session.execute(
            select(func.count(DecisionLog.id), func.max(DecisionLog.at))
        ).one()
    document = current(control)
    entry = {
        "experiment_key": "exp-a",
        "status": "running",
        "seed": "exp-a",
        "traffic": 1.0,
        "variants": [
            {"key": "control", "weight": 0.2},
            {"key": "a", "weight": 0.3},
            {"key": "b", "weight": 0.5},
        ],
        "default_variant": "control",
        "served_variant": None,
        "outcome": None,
        "forced": {},
        "subject_type": "user",
        "assignment_version": 1,
    }
    draft = {
        **entry,
        "experiment_key": "exp-b",
        "status": "draft",
        "seed": "exp-b",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "test", "weight": 0.5}],
    }
    assert document == {
        "format": 1,
        "version": log_rows,
        "generated_at": "2026-11-20T12:00:00Z",
        "decided_at": iso_utc(newest),
        "experiments_enabled": True,
        "flags": {"flag-a": entry, "flag-b": draft},
    }
    assert validate_snapshot(document) is document
    assert decide(document, "flag-b", "user-1").reason == "not_running"


def test_decisions_from_the_database_and_from_its_json_agree_for_10_000_ids(
    control: Control, tmp_path: Path
) -> None:
    control.sync(running_catalog(variants=THREE_WAY))
    built = current(control)
    written = write_snapshot(built, tmp_path / "flags.json")
    loaded = parse_snapshot(written.read_text(encoding="utf-8"))
    assert loaded == built
    direct = [decide(built, FLAG, s) for s in SUBJECTS]
    assert direct == [decide(loaded, FLAG, s) for s in SUBJECTS]
    assert {d.reason for d in direct} == {"experiment_assigned"}
    assert {d.variant for d in direct} == {"control", "a", "b"}


def test_write_snapshot_replaces_the_file_whole_and_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "out" / "flags.json"
    write_snapshot(snapshot(), path)
    write_snapshot({**snapshot(), "version": 2}, path)
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["flags.json"]


def test_the_reference_lifecycle_as_decide_sees_it(control: Control) -> None:
    """Running assigns with decision ids; a guardrail pause serves control as not_running;
    resuming restores every assignment; a rollback serves control to everyone; the kill
    switch answers experiments_disabled. Each decision raises the version."""
    control.sync(running_catalog())
    running = current(control)
    assigned = {s: decide(running, FLAG, s) for s in SUBJECTS[:2000]}
    assert {d.reason for d in assigned.values()} == {"experiment_assigned"}
    assert all(d.decision_id and d.in_experiment for d in assigned.values())

    control.act(
        "pause", actor="guardrail-sensor", reason="error_rate above 0.1", decision_key="g:1"
    )
    paused = current(control)
    assert paused["version"] == running["version"] + 1
    assert _instant(paused["decided_at"]) > _instant(running["decided_at"])
    answers = {(d.variant, d.reason, d.in_experiment) for d in _all(paused)}
    assert answers == {("control", "not_running", False)}

    control.act("resume", actor="alice", reason="fixed")
    resumed = current(control)
    assert {s: decide(resumed, FLAG, s) for s in assigned} == assigned

    control.act("complete", actor="guardrail-sensor", outcome="rollback", winner="control")
    rolled_back = current(control)
    assert rolled_back["version"] == resumed["version"] + 1
    assert rolled_back["flags"][FLAG]["served_variant"] == "control"
    answers = {(d.variant, d.reason, d.in_experiment) for d in _all(rolled_back)}
    assert answers == {("control", "rolled_back", False)}

    with control.db.session() as session:
        set_setting(session, "experiments_enabled", False, actor="oncall")
    disabled = current(control)
    assert disabled["experiments_enabled"] is False
    assert disabled["version"] == rolled_back["version"] + 1
    assert {(d.variant, d.reason) for d in _all(disabled)} == {("control", "experiments_disabled")}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _all(document: dict[str, Any]) -> list[Any]:
    return [decide(document, FLAG, s) for s in SUBJECTS[:2000]]


def test_a_shipped_winner_is_served_to_everyone_as_completed(control: Control) -> None:
    control.sync(running_catalog())
    control.act("complete", actor="alice", outcome="shipped", winner="test")
    answers = {(d.variant, d.reason) for d in _all(current(control))}
    assert answers == {("test", "completed")}


def test_the_kill_switch_overrides_a_running_experiment(control: Control) -> None:
    control.sync(running_catalog())
    with control.db.session() as session:
        set_setting(session, "experiments_enabled", False)
    decision = decide(current(control), FLAG, "user-1")
    assert (decision.variant, decision.reason, decision.in_experiment) == (
        "control",
        "experiments_disabled",
        False,
    )


def test_deleted_flags_leave_the_snapshot_and_a_reused_key_follows_the_new_experiment(
    control: Control,
) -> None:
    control.sync(running_catalog())
    with control.db.session() as session:
        soft_delete(session, get_live_experiment(session, "exp-a"), actor="alice")
    assert current(control)["flags"] == {}
    control.sync(running_catalog(key="exp-a2", name="Experiment A2"))
    entry = current(control)["flags"][FLAG]
    assert (entry["experiment_key"], entry["seed"], entry["status"]) == (
        "exp-a2",
        "exp-a2",
        "running",
    )


def test_an_empty_database_gives_an_empty_snapshot_at_version_0(control: Control) -> None:
    document = current(control)
    assert (document["version"], document["decided_at"], document["flags"]) == (0, None, {})
    assert decide(document, FLAG, "user-1").reason == "unknown_flag"


def test_a_caller_may_pin_the_version(control: Control) -> None:
    control.sync(running_catalog())
    with control.db.session() as session:
        assert build_snapshot(session, 42, GENERATED_AT)["version"] == 42


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format=2), "format 1"),
        (lambda d: d.update(version="7"), "version must be an integer"),
        (lambda d: d.update(experiments_enabled="yes"), "experiments_enabled"),
        (lambda d: d["flags"][FLAG].pop("seed"), "missing seed"),
        (lambda d: d["flags"][FLAG].update(status="live"), "status must be one of"),
        (lambda d: d["flags"][FLAG].update(traffic=1.5), "traffic must be a number"),
        (lambda d: d["flags"][FLAG].update(variants=[]), "non-empty list"),
        (lambda d: d["flags"][FLAG]["variants"][0].update(weight=0.4), "sum to 1"),
        (lambda d: d["flags"][FLAG]["variants"][0].update(weight=-0.5), "weight of 0 or more"),
        (lambda d: d["flags"][FLAG].update(forced={"qa": "purple"}), "'purple' is not one"),
        (lambda d: d["flags"][FLAG].update(served_variant="purple"), "'purple' is not one"),
        (lambda d: d["flags"][FLAG].update(default_variant="purple"), "default_variant"),
        (lambda d: d["flags"][FLAG].update(assignment_version=0), "assignment_version"),
    ],
)
def test_validation_names_what_is_wrong(change: Any, message: str) -> None:
    document = snapshot()
    change(document)
    with pytest.raises(FlagError, match=message):
        parse_snapshot(json.dumps(document))


def test_parse_snapshot_refuses_text_that_is_not_json() -> None:
    with pytest.raises(FlagError, match="invalid JSON"):
        parse_snapshot("{")
