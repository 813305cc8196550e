"""sync_catalog: the catalog upserted into the control database, within lifecycle rules.

Every failing sync is checked against a full snapshot of the database taken before it:
the sync runs in one transaction, so a refused change must leave no partial writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from exp_pipeline.control.lifecycle import get_live_experiment, soft_delete, transition
from exp_pipeline.control.sync import SyncReport
from exp_pipeline.errors import CatalogError

from .conftest import EXPERIMENT_A, EXPERIMENT_B, Control, catalog, experiment

PROJECT_CATALOG = Path(__file__).resolve().parents[2] / "config" / "experiments.yaml"

START = "2026-11-01T00:00:00Z"
END = "2026-11-15T00:00:00Z"
START_UTC = datetime(2026, 11, 1, tzinfo=UTC)
END_UTC = datetime(2026, 11, 15, tzinfo=UTC)

SIGNUP = {
    "key": "signup",
    "aggregation": "person",
    "kind": "funnel",
    "steps": ["$pageview", "signup"],
    "conversion_window_hours": None,
}
CLICKS = {
    "key": "clicks",
    "aggregation": "person",
    "kind": "trend",
    "event": "click",
    "math": "total",
}
PURCHASES = {
    "key": "purchases",
    "aggregation": "person",
    "kind": "trend",
    "event": "purchase",
    "math": "total",
}
CLICKS_GUARDRAIL = {
    "metric": "clicks",
    "threshold": 0.2,
    "observation_window_minutes": 60,
    "action": "pause",
    "min_sample": None,
    "method": "threshold",
}

RUNNING_A = experiment(EXPERIMENT_A, start_date=START, end_date=END)


def refused(control: Control, raw: dict[str, Any], message: str, *, prune: bool = False) -> None:
    """Assert the sync of `raw` fails with exactly `message` and writes nothing at all."""
    before = control.snapshot()
    with pytest.raises(CatalogError) as excinfo:
        control.sync(raw, prune=prune)
    assert str(excinfo.value) == message
    assert control.snapshot() == before


def test_first_sync_creates_experiments_flags_variants_metrics_guardrails(
    control: Control,
) -> None:
    """Every catalog field lands in its column; drafts (no start_date) are not started."""
    report = control.sync(catalog(EXPERIMENT_A, EXPERIMENT_B))

    assert report.as_dict() == {
        "created": ["exp-a", "exp-b"],
        "updated": {},
        "started": [],
        "deleted": [],
        "unchanged": [],
        "awaiting_approval": [],
        "returned_to_review": [],
    }
    assert control.state("exp-a") == {
        "name": "Experiment A",
        "description": "First test experiment.",
        "status": "draft",
        "start_date": None,
        "end_date": None,
        "timezone": "UTC",
        "flag": ("flag-a", False, None),
        "variants": [("control", "Control", 50.0, 0), ("test", "Test", 50.0, 1)],
        "metrics": [("signup", "funnel", 0, SIGNUP), ("clicks", "trend", 1, CLICKS)],
        "guardrails": [("clicks", 0.2, 60, "pause", 0, CLICKS_GUARDRAIL)],
    }
    assert control.state("exp-b") == {
        "name": "Experiment B",
        "description": "",
        "status": "draft",
        "start_date": None,
        "end_date": None,
        "timezone": "UTC",
        "flag": ("flag-b", False, None),
        "variants": [("control", "Control", 50.0, 0), ("test", "Test", 50.0, 1)],
        "metrics": [("purchases", "trend", 0, PURCHASES)],
        "guardrails": [],
    }
    assert control.log() == [
        ("exp-a", "create", None, "draft", "catalog", "", {}),
        ("exp-b", "create", None, "draft", "catalog", "", {}),
    ]


def test_the_project_catalog_syncs_and_starts_and_resyncs_as_unchanged(control: Control) -> None:
    """config/experiments.yaml as shipped: three experiments created and started, then
    a second sync of the same file reports all unchanged and writes nothing."""
    raw = yaml.safe_load(PROJECT_CATALOG.read_text(encoding="utf-8"))
    keys = ["checkout-funnel", "homepage-banner", "new-search"]

    first = control.sync(raw)
    assert first.lines() == [
        "created checkout-funnel",
        "created homepage-banner",
        "created new-search",
        "started checkout-funnel",
        "started homepage-banner",
        "started new-search",
        "3 created, 0 updated, 3 started, 0 deleted, 0 unchanged",
    ]
    assert first.changed is True
    state = control.state("new-search")
    assert (state["status"], state["flag"], state["start_date"], state["end_date"]) == (
        "running",
        ("new-search", True, None),
        START_UTC,
        None,
    )
    assert state["guardrails"][0][:5] == ("error_rate", 0.1, 60, "pause", 0)
    assert control.state("checkout-funnel")["timezone"] == "Europe/Amsterdam"

    before = control.snapshot()
    second = control.sync(raw)
    assert second.as_dict() == {
        "created": [],
        "updated": {},
        "started": [],
        "deleted": [],
        "unchanged": keys,
        "awaiting_approval": [],
        "returned_to_review": [],
    }
    assert second.lines() == ["0 created, 0 updated, 0 started, 0 deleted, 3 unchanged"]
    assert second.changed is False
    assert control.snapshot() == before


def test_resync_of_drafts_writes_nothing(control: Control) -> None:
    """An unchanged catalog is a no-op: same rows, same timestamps, no log rows."""
    raw = catalog(EXPERIMENT_A, EXPERIMENT_B)
    control.sync(raw)
    before = control.snapshot()

    report = control.sync(raw)

    assert report.as_dict()["unchanged"] == ["exp-a", "exp-b"]
    assert report.changed is False
    assert control.snapshot() == before


def test_setting_start_date_on_a_draft_updates_and_starts_it(control: Control) -> None:
    """start_date is the catalog's way to start: the draft runs and its flag turns on."""
    control.sync(catalog(EXPERIMENT_A))

    report = control.sync(catalog(RUNNING_A))

    assert report.as_dict() == {
        "created": [],
        "updated": {"exp-a": ["start_date", "end_date"]},
        "started": ["exp-a"],
        "deleted": [],
        "unchanged": [],
        "awaiting_approval": [],
        "returned_to_review": [],
    }
    assert report.lines() == [
        "updated exp-a: start_date, end_date",
        "started exp-a",
        "0 created, 1 updated, 1 started, 0 deleted, 0 unchanged",
    ]
    state = control.state("exp-a")
    assert (state["status"], state["flag"], state["start_date"], state["end_date"]) == (
        "running",
        ("flag-a", True, None),
        START_UTC,
        END_UTC,
    )
    assert control.log()[1:] == [
        (
            "exp-a",
            "update",
            "draft",
            "draft",
            "catalog",
            "",
            {"fields": ["start_date", "end_date"]},
        ),
        ("exp-a", "start", "draft", "running", "catalog", "start_date is set", {}),
    ]


def test_a_running_experiment_takes_name_description_window_metrics_guardrails(
    control: Control,
) -> None:
    """Only variants and the flag key freeze at start; everything else still syncs,
    including a metric redefined under the same key (a replace, not a duplicate)."""
    control.sync(catalog(RUNNING_A))
    changed = experiment(
        RUNNING_A,
        name="Experiment A, renamed",
        description="Now with a revenue metric.",
        end_date="2026-11-20T12:00:00+01:00",
        metrics=[
            {"key": "signup", "kind": "funnel", "steps": ["$pageview", "signup"]},
            {"key": "clicks", "kind": "trend", "event": "click", "math": "avg_count_per_actor"},
            {"key": "revenue", "kind": "continuous", "event": "purchase", "property": "amount"},
        ],
        guardrails=[{"metric": "clicks", "threshold": 0.5, "action": "rollback"}],
    )

    report = control.sync(catalog(changed))

    fields = ["name", "description", "end_date", "metrics", "guardrails"]
    assert report.as_dict() == {
        "created": [],
        "updated": {"exp-a": fields},
        "started": [],
        "deleted": [],
        "unchanged": [],
        "awaiting_approval": [],
        "returned_to_review": [],
    }
    assert report.lines() == [
        "updated exp-a: name, description, end_date, metrics, guardrails",
        "0 created, 1 updated, 0 started, 0 deleted, 0 unchanged",
    ]
    revenue = {
        "key": "revenue",
        "aggregation": "person",
        "kind": "continuous",
        "event": "purchase",
        "property": "amount",
        "winsorize_percentile": None,
        "direction": "higher_is_better",
    }
    guardrail = {
        "metric": "clicks",
        "threshold": 0.5,
        "observation_window_minutes": None,
        "action": "rollback",
        "min_sample": None,
        "method": "threshold",
    }
    assert control.state("exp-a") == {
        "name": "Experiment A, renamed",
        "description": "Now with a revenue metric.",
        "status": "running",
        "start_date": START_UTC,
        "end_date": datetime(2026, 11, 20, 11, tzinfo=UTC),
        "timezone": "UTC",
        "flag": ("flag-a", True, None),
        "variants": [("control", "Control", 50.0, 0), ("test", "Test", 50.0, 1)],
        "metrics": [
            ("signup", "funnel", 0, SIGNUP),
            ("clicks", "trend", 1, {**CLICKS, "math": "avg_count_per_actor"}),
            ("revenue", "continuous", 2, revenue),
        ],
        "guardrails": [("clicks", 0.5, None, "rollback", 0, guardrail)],
    }
    assert control.count("metrics") == 3
    assert control.count("guardrails") == 1
    assert control.log()[-1] == (
        "exp-a",
        "update",
        "running",
        "running",
        "catalog",
        "",
        {"fields": fields},
    )
    # The update is itself idempotent.
    assert control.sync(catalog(changed)).unchanged == ["exp-a"]


def test_a_draft_can_change_variants_and_flag_key(control: Control) -> None:
    """Before start no subject has been assigned, so variants and the flag key are free."""
    control.sync(catalog(EXPERIMENT_A))
    flag_ids = control.snapshot()["feature_flags"]
    changed = experiment(
        EXPERIMENT_A,
        feature_flag_key="flag-a2",
        variants=[
            {"key": "control", "rollout_percentage": 34},
            {"key": "test", "name": "Test", "rollout_percentage": 33},
            {"key": "test-2", "name": "Test 2", "rollout_percentage": 33},
        ],
    )

    report = control.sync(catalog(changed))

    assert report.updated == {"exp-a": ["feature_flag_key", "variants"]}
    assert report.started == []
    state = control.state("exp-a")
    assert state["flag"] == ("flag-a2", False, None)
    assert state["variants"] == [
        ("control", None, 34.0, 0),
        ("test", "Test", 33.0, 1),
        ("test-2", "Test 2", 33.0, 2),
    ]
    assert control.count("variants") == 3
    # The flag is renamed in place, not replaced.
    assert [row[0] for row in control.snapshot()["feature_flags"]] == [row[0] for row in flag_ids]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "variants": [
                    {"key": "control", "name": "Control", "rollout_percentage": 60},
                    {"key": "test", "name": "Test", "rollout_percentage": 40},
                ]
            },
            "experiment 'exp-a': Can't update feature_flag_variants on Experiment 'exp-a': "
            "it has started (status running)",
        ),
        (
            {
                "variants": [
                    {"key": "control", "name": "Control", "rollout_percentage": 50},
                    {"key": "test", "name": "Treatment", "rollout_percentage": 50},
                ]
            },
            "experiment 'exp-a': Can't update feature_flag_variants on Experiment 'exp-a': "
            "it has started (status running)",
        ),
        (
            {"feature_flag_key": "flag-a2"},
            "experiment 'exp-a': Can't update feature_flag_key on Experiment 'exp-a': "
            "it has started (status running)",
        ),
        (
            {"start_date": None, "end_date": None},
            "experiment 'exp-a': start_date can't be removed: it has started (status running)",
        ),
    ],
    ids=["rollout", "variant-name", "flag-key", "start-date"],
)
def test_a_started_experiment_refuses_frozen_changes_without_partial_writes(
    control: Control, change: dict[str, Any], message: str
) -> None:
    """Subjects are already assigned with these variants and this flag, so the sync is
    refused; the new experiment and the valid update earlier in the catalog roll back."""
    control.sync(catalog(EXPERIMENT_B, RUNNING_A))
    new = experiment(EXPERIMENT_B, key="exp-c", name="Experiment C", feature_flag_key="flag-c")
    renamed_b = experiment(EXPERIMENT_B, name="Experiment B, renamed")

    refused(control, catalog(new, renamed_b, experiment(RUNNING_A, **change)), message)

    assert [e[0] for e in control.experiments()] == ["exp-b", "exp-a"]
    assert control.state("exp-b")["name"] == "Experiment B"


def test_frozen_fields_stay_frozen_after_pause_and_completion(control: Control) -> None:
    """'Started' means any status past draft, not only running."""
    control.sync(catalog(RUNNING_A))
    with control.db.session() as session:
        transition(session, get_live_experiment(session, "exp-a"), "pause", actor="t")
    refused(
        control,
        catalog(experiment(RUNNING_A, feature_flag_key="other")),
        "experiment 'exp-a': Can't update feature_flag_key on Experiment 'exp-a': "
        "it has started (status paused)",
    )
    with control.db.session() as session:
        exp = get_live_experiment(session, "exp-a")
        transition(session, exp, "complete", actor="t", outcome="inconclusive")
    refused(
        control,
        catalog(experiment(RUNNING_A, variants=[{"key": "control", "rollout_percentage": 100}])),
        "experiment 'exp-a': Can't update feature_flag_variants on Experiment 'exp-a': "
        "it has started (status completed)",
    )
    # A completed experiment still in the catalog is left alone, not restarted.
    report = control.sync(catalog(RUNNING_A))
    assert (report.unchanged, report.started) == (["exp-a"], [])
    assert control.state("exp-a")["status"] == "completed"


def test_a_flag_key_of_another_live_experiment_is_refused(control: Control) -> None:
    """Two live experiments on one flag would assign subjects twice; both a new
    experiment and a draft's new key are refused, naming the owner."""
    control.sync(catalog(EXPERIMENT_A, EXPERIMENT_B))
    stealer = experiment(EXPERIMENT_B, key="exp-c", name="Experiment C", feature_flag_key="flag-a")
    refused(
        control,
        catalog(EXPERIMENT_B, stealer),
        "experiment 'exp-c': feature_flag_key 'flag-a' is already used by experiment 'exp-a'",
    )
    refused(
        control,
        catalog(experiment(EXPERIMENT_B, feature_flag_key="flag-a")),
        "experiment 'exp-b': feature_flag_key 'flag-a' is already used by experiment 'exp-a'",
    )


def test_a_name_of_another_live_experiment_is_refused(control: Control) -> None:
    """Names are unique among live experiments, as the partial unique index demands."""
    control.sync(catalog(EXPERIMENT_A, EXPERIMENT_B))
    refused(
        control,
        catalog(
            experiment(EXPERIMENT_B, key="exp-c", feature_flag_key="flag-c", name="Experiment A")
        ),
        "experiment 'exp-c': name 'Experiment A' is already used by experiment 'exp-a'",
    )
    refused(
        control,
        catalog(experiment(EXPERIMENT_B, name="Experiment A")),
        "experiment 'exp-b': name 'Experiment A' is already used by experiment 'exp-a'",
    )


@pytest.mark.parametrize("new_key", ["exp-a", "exp-c"])
def test_a_soft_deleted_experiment_frees_its_flag_key_and_name(
    control: Control, new_key: str
) -> None:
    """History stays (the deleted rows remain); the key, name and flag key are reusable."""
    control.sync(catalog(RUNNING_A))
    with control.db.session() as session:
        soft_delete(session, get_live_experiment(session, "exp-a"), actor="alice", reason="oops")

    report = control.sync(catalog(experiment(RUNNING_A, key=new_key)))

    assert (report.created, report.started, report.unchanged) == ([new_key], [new_key], [])
    assert control.experiments() == [
        ("exp-a", "Experiment A", "flag-a", True, True, False),
        (new_key, "Experiment A", "flag-a", False, False, True),
    ]
    assert [(r[0], r[1], r[4], r[5]) for r in control.log()] == [
        ("exp-a", "create", "catalog", ""),
        ("exp-a", "start", "catalog", "start_date is set"),
        ("exp-a", "delete", "alice", "oops"),
        (new_key, "create", "catalog", ""),
        (new_key, "start", "catalog", "start_date is set"),
    ]


def test_without_prune_missing_experiments_stay(control: Control) -> None:
    """Dropping an entry from the file is not a delete unless asked for."""
    control.sync(catalog(EXPERIMENT_A, EXPERIMENT_B))
    before = control.snapshot()

    report = control.sync(catalog(EXPERIMENT_B))

    assert report.as_dict() == {
        "created": [],
        "updated": {},
        "started": [],
        "deleted": [],
        "unchanged": ["exp-b"],
        "awaiting_approval": [],
        "returned_to_review": [],
    }
    assert control.snapshot() == before


def test_prune_soft_deletes_missing_experiments_and_frees_their_flags(control: Control) -> None:
    """Pruning runs first, so the same sync may hand a pruned flag key to a new experiment."""
    control.sync(catalog(RUNNING_A, EXPERIMENT_B))
    heir = experiment(EXPERIMENT_B, key="exp-c", name="Experiment C", feature_flag_key="flag-a")

    report = control.sync(catalog(EXPERIMENT_B, heir), prune=True)

    assert report.as_dict() == {
        "created": ["exp-c"],
        "updated": {},
        "started": [],
        "deleted": ["exp-a"],
        "unchanged": ["exp-b"],
        "awaiting_approval": [],
        "returned_to_review": [],
    }
    assert report.lines() == [
        "created exp-c",
        "deleted exp-a",
        "1 created, 0 updated, 0 started, 1 deleted, 1 unchanged",
    ]
    assert control.experiments() == [
        ("exp-a", "Experiment A", "flag-a", True, True, False),
        ("exp-b", "Experiment B", "flag-b", False, False, False),
        ("exp-c", "Experiment C", "flag-a", False, False, False),
    ]
    assert control.log()[-2:] == [
        ("exp-a", "delete", "running", None, "catalog", "not in the catalog", {}),
        ("exp-c", "create", None, "draft", "catalog", "", {}),
    ]
    # Pruning again finds nothing more to delete.
    again = control.sync(catalog(EXPERIMENT_B, heir), prune=True)
    assert (again.deleted, again.unchanged) == ([], ["exp-b", "exp-c"])


def test_prune_with_an_empty_catalog_deletes_everything(control: Control) -> None:
    """An empty catalog with prune is a deliberate way to retire every experiment."""
    control.sync(catalog(EXPERIMENT_A, EXPERIMENT_B))
    report = control.sync(catalog(), prune=True)
    assert report.lines() == [
        "deleted exp-a",
        "deleted exp-b",
        "0 created, 0 updated, 0 started, 2 deleted, 0 unchanged",
    ]
    assert [e[3] for e in control.experiments()] == [True, True]


def test_sync_report_lines_and_dict() -> None:
    """The CLI prints lines() and --json prints as_dict(); both in a stable order."""
    report = SyncReport(
        created=["new"],
        updated={"b": ["name", "metrics"], "a": ["end_date"]},
        started=["new"],
        deleted=["old"],
        unchanged=["c", "d"],
    )
    assert report.changed is True
    assert report.lines() == [
        "created new",
        "updated b: name, metrics",
        "updated a: end_date",
        "started new",
        "deleted old",
        "1 created, 2 updated, 1 started, 1 deleted, 2 unchanged",
    ]
    assert json.loads(json.dumps(report.as_dict())) == {
        "created": ["new"],
        "updated": {"b": ["name", "metrics"], "a": ["end_date"]},
        "started": ["new"],
        "deleted": ["old"],
        "unchanged": ["c", "d"],
        "awaiting_approval": [],
        "returned_to_review": [],
    }
    assert SyncReport(unchanged=["c"]).changed is False
    assert SyncReport().lines() == ["0 created, 0 updated, 0 started, 0 deleted, 0 unchanged"]
