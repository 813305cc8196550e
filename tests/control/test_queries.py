"""Read-side queries: which experiments are live, and what `experiments list` shows."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from exp_pipeline.control.lifecycle import get_live_experiment, soft_delete, transition
from exp_pipeline.control.queries import describe, live_experiments

from .conftest import EXPERIMENT_A, EXPERIMENT_B, Control, catalog, experiment

PROJECT_CATALOG = Path(__file__).resolve().parents[2] / "config" / "experiments.yaml"


def described(control: Control) -> list[dict[str, object]]:
    """describe() of every live experiment, read in one transaction as the CLI does."""
    with control.db.session() as session:
        return [describe(e) for e in live_experiments(session)]


def test_live_experiments_exclude_deleted_ones_and_are_ordered_by_key(control: Control) -> None:
    """Deleted experiments are history, not live; the order is the key, not insertion."""
    c = experiment(EXPERIMENT_B, key="exp-c", name="Experiment C", feature_flag_key="flag-c")
    control.sync(catalog(c, EXPERIMENT_B, EXPERIMENT_A))
    with control.db.session() as session:
        soft_delete(session, get_live_experiment(session, "exp-b"), actor="alice")
        assert [e.key for e in live_experiments(session)] == ["exp-a", "exp-c"]
    # Re-creating the key gives a live row again, the deleted one stays hidden.
    control.sync(catalog(EXPERIMENT_B))
    assert [d["key"] for d in described(control)] == ["exp-a", "exp-b", "exp-c"]
    assert [e[0] for e in control.experiments()] == ["exp-c", "exp-b", "exp-a", "exp-b"]


def test_no_experiments_at_all(control: Control) -> None:
    """An empty database lists nothing (the CLI then prints its hint)."""
    assert described(control) == []


def test_describe_the_project_catalog(control: Control) -> None:
    """Exactly what `experiments list --json` prints for the shipped catalog."""
    control.sync(yaml.safe_load(PROJECT_CATALOG.read_text(encoding="utf-8")))

    rows = described(control)

    assert [(r["key"], r["name"], r["status"], r["flag_active"]) for r in rows] == [
        ("checkout-funnel", "One-page checkout", "running", True),
        ("homepage-banner", "Homepage banner", "running", True),
        ("new-search", "New search backend", "running", True),
    ]
    assert rows[0]["timezone"] == "Europe/Amsterdam"
    assert rows[0]["window"] == {"start": "2026-11-01T00:00:00Z", "end": "2026-11-14T23:59:59Z"}
    assert rows[0]["variants"] == [
        {"key": "control", "name": "Multi-step checkout", "rollout_percentage": 50.0},
        {"key": "test", "name": "One-page checkout", "rollout_percentage": 50.0},
    ]
    assert [m["key"] for m in rows[0]["metrics"]] == ["purchase_funnel", "revenue", "pageviews"]
    assert rows[2] == {
        "key": "new-search",
        "name": "New search backend",
        "status": "running",
        "feature_flag_key": "new-search",
        "flag_active": True,
        "timezone": "UTC",
        "window": {"start": "2026-11-01T00:00:00Z", "end": None},
        "subject_type": "user",
        "traffic_percentage": 100.0,
        "assignment_version": 1,
        "variants": [
            {"key": "control", "name": "Current search", "rollout_percentage": 50.0},
            {"key": "test", "name": "New search", "rollout_percentage": 50.0},
        ],
        "forced": {},
        "metrics": [
            {
                "key": "searches",
                "aggregation": "person",
                "kind": "trend",
                "event": "search",
                "math": "total",
            },
            {
                "key": "error_rate",
                "aggregation": "person",
                "kind": "ratio",
                "numerator": "app_error",
                "denominator": "app_exposure",
                "direction": "lower_is_better",
            },
            {
                "key": "org_error_rate",
                "aggregation": "organization",
                "kind": "ratio",
                "numerator": "app_error",
                "denominator": "app_exposure",
                "direction": "lower_is_better",
            },
        ],
        "guardrails": [
            {
                "metric": "error_rate",
                "threshold": 0.1,
                "observation_window_minutes": 60,
                "action": "pause",
                "min_sample": None,
                "method": "threshold",
            }
        ],
        "segments": [],
        "outcome": None,
    }
    assert json.loads(json.dumps(rows)) == rows


def test_describe_a_draft_and_a_completed_experiment(control: Control) -> None:
    """Drafts have an open window and an inactive flag; completion shows the outcome."""
    running = experiment(EXPERIMENT_A, start_date="2026-11-01T00:00:00Z")
    control.sync(catalog(running, EXPERIMENT_B))
    with control.db.session() as session:
        exp = get_live_experiment(session, "exp-a")
        transition(session, exp, "complete", actor="alice", outcome="shipped", winner="test")

    rows = {r["key"]: r for r in described(control)}

    assert {k: rows["exp-a"][k] for k in ("status", "flag_active", "window", "outcome")} == {
        "status": "completed",
        "flag_active": False,
        "window": {"start": "2026-11-01T00:00:00Z", "end": None},
        "outcome": {"outcome": "shipped", "winner": "test"},
    }
    assert {k: rows["exp-b"][k] for k in ("status", "flag_active", "window", "outcome")} == {
        "status": "draft",
        "flag_active": False,
        "window": {"start": None, "end": None},
        "outcome": None,
    }


def test_windows_are_stored_and_shown_as_utc_instants(control: Control) -> None:
    """A date alone is midnight in the experiment's timezone, an offset is honoured and a
    naive datetime is UTC; both backends hand back the same instants."""
    amsterdam = experiment(
        EXPERIMENT_A,
        timezone="Europe/Amsterdam",
        start_date="2026-11-01",
        end_date="2026-11-15T12:00:00+01:00",
    )
    naive = experiment(EXPERIMENT_B, start_date="2026-11-02 08:30", end_date="2026-11-03")
    control.sync(catalog(amsterdam, naive, timezone="America/New_York"))

    windows = {r["key"]: (r["timezone"], r["window"]) for r in described(control)}

    assert windows == {
        "exp-a": (
            "Europe/Amsterdam",
            {"start": "2026-10-31T23:00:00Z", "end": "2026-11-15T11:00:00Z"},
        ),
        "exp-b": (
            "America/New_York",
            {"start": "2026-11-02T08:30:00Z", "end": "2026-11-03T05:00:00Z"},
        ),
    }
    # Unchanged instants compare equal after the round trip, so a resync is a no-op.
    assert control.sync(catalog(amsterdam, naive, timezone="America/New_York")).unchanged == [
        "exp-a",
        "exp-b",
    ]
