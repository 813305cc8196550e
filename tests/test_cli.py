"""The `exp-pipeline` command line, driven through click's runner on real stores.

Each test gets its own home (warehouse + SQLite control database); the PostgreSQL test
points the control database at a fresh schema through the environment, as production
does. Errors must be one line on stderr with exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from exp_pipeline.cli import cli

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CATALOG = PROJECT_ROOT / "config" / "experiments.yaml"


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def assert_one_line_error(result: Result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


def write_catalog(tmp_path: Path, mutate=None) -> Path:
    """A copy of the shipped catalog, optionally changed by `mutate(doc)`."""
    doc = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    if mutate:
        mutate(doc)
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_sync_prints_changes_and_is_idempotent(home: Path) -> None:
    first = run(home, "experiments", "sync", str(CATALOG))
    assert first.exit_code == 0, first.output
    assert "created checkout-funnel" in first.stdout
    assert first.stdout.strip().splitlines()[-1] == (
        "3 created, 0 updated, 3 started, 0 deleted, 0 unchanged"
    )
    second = run(home, "experiments", "sync", str(CATALOG), "--json")
    assert json.loads(second.stdout) == {
        "created": [],
        "updated": {},
        "started": [],
        "deleted": [],
        "unchanged": ["checkout-funnel", "homepage-banner", "new-search"],
        "awaiting_approval": [],
        "returned_to_review": [],
    }


def test_sync_reports_updated_fields(home: Path, tmp_path: Path) -> None:
    run(home, "experiments", "sync", str(CATALOG))

    def rename(doc: dict) -> None:
        doc["experiments"][1]["description"] = "Changed."

    result = run(home, "experiments", "sync", str(write_catalog(tmp_path, rename)), "--json")
    assert json.loads(result.stdout)["updated"] == {"homepage-banner": ["description"]}


def test_sync_refuses_variant_change_after_start_in_one_line(home: Path, tmp_path: Path) -> None:
    run(home, "experiments", "sync", str(CATALOG))

    def change_split(doc: dict) -> None:
        doc["experiments"][0]["variants"][0]["rollout_percentage"] = 40
        doc["experiments"][0]["variants"][1]["rollout_percentage"] = 60

    result = run(home, "experiments", "sync", str(write_catalog(tmp_path, change_split)))
    assert_one_line_error(
        result, "Can't update feature_flag_variants on Experiment 'checkout-funnel'"
    )
    listed = json.loads(run(home, "experiments", "list", "--json").stdout)
    assert [v["rollout_percentage"] for v in listed[0]["variants"]] == [50.0, 50.0]


def test_sync_rejects_an_invalid_catalog_naming_file_experiment_and_field(
    home: Path, tmp_path: Path
) -> None:
    def bad_split(doc: dict) -> None:
        doc["experiments"][2]["variants"][1]["rollout_percentage"] = 40

    path = write_catalog(tmp_path, bad_split)
    result = run(home, "experiments", "sync", str(path))
    assert_one_line_error(result, f"{path}: experiment 'new-search': variants:")
    assert "sum to 100" in result.stderr


def test_sync_of_a_missing_file_is_one_line(home: Path, tmp_path: Path) -> None:
    result = run(home, "experiments", "sync", str(tmp_path / "nope.yaml"))
    assert_one_line_error(result, "nope.yaml")


def test_list_shows_window_variants_status_and_outcome(home: Path) -> None:
    empty = run(home, "experiments", "list")
    assert "no experiments" in empty.stdout
    run(home, "experiments", "sync", str(CATALOG))
    table = run(home, "experiments", "list").stdout
    header, _rule, *rows = table.strip().splitlines()
    assert header.split() == ["key", "name", "status", "window", "(UTC)", "variants", "outcome"]
    assert rows[2].startswith("new-search")
    assert "2026-11-01T00:00:00Z .. open" in rows[2]
    assert "control 50%, test 50%" in rows[2]
    listed = json.loads(run(home, "experiments", "list", "--json").stdout)
    assert [(e["key"], e["status"], e["outcome"]) for e in listed] == [
        ("checkout-funnel", "running", None),
        ("homepage-banner", "running", None),
        ("new-search", "running", None),
    ]
    assert listed[0]["window"] == {"start": "2026-11-01T00:00:00Z", "end": "2026-11-14T23:59:59Z"}


def test_delete_frees_the_key_and_unknown_keys_fail(home: Path) -> None:
    run(home, "experiments", "sync", str(CATALOG))
    assert run(home, "experiments", "delete", "homepage-banner").stdout.strip() == (
        "deleted homepage-banner"
    )
    keys = [e["key"] for e in json.loads(run(home, "experiments", "list", "--json").stdout)]
    assert keys == ["checkout-funnel", "new-search"]
    assert_one_line_error(
        run(home, "experiments", "delete", "homepage-banner"),
        "experiment 'homepage-banner' does not exist",
    )
    # Syncing the catalog again recreates it under the same key and flag key.
    again = run(home, "experiments", "sync", str(CATALOG))
    assert "created homepage-banner" in again.stdout


def test_settings_kill_switch_round_trip_and_errors(home: Path) -> None:
    assert "experiments_enabled = true" in run(home, "settings", "list").stdout
    assert run(home, "settings", "set", "experiments_enabled", "false").exit_code == 0
    assert "experiments_enabled = false" in run(home, "settings", "list").stdout
    assert_one_line_error(
        run(home, "settings", "set", "experiments_enabled", "nope"),
        "setting 'experiments_enabled' takes true or false, not 'nope'",
    )
    assert_one_line_error(run(home, "settings", "set", "bogus", "1"), "unknown setting 'bogus'")
    assert "experiments_enabled = false" in run(home, "settings", "list").stdout


def test_events_load_reports_counts_and_is_idempotent(home: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    lines = [
        {
            "event": "$pageview",
            "distinct_id": "u1",
            "timestamp": "2026-11-01T10:00:00Z",
            "properties": {"$feature/f": "test"},
            "event_id": "e1",
        },
        {
            "event": "$pageview",
            "distinct_id": "u1",
            "timestamp": "2026-11-01T10:00:00Z",
            "properties": {},
            "event_id": "e1",
        },
        {"event": "$pageview", "timestamp": "2026-11-01T10:00:00Z"},
    ]
    (landing / "a.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines) + "{not json\n", encoding="utf-8"
    )
    first = run(home, "events", "load", str(landing), "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert (summary["rows_read"], summary["rows_loaded"], summary["duplicates_skipped"]) == (
        4,
        1,
        1,
    )
    assert summary["quarantined"] == {"malformed_json": 1, "missing_distinct_id": 1}
    assert summary["flag_assignments"] == 1
    again = run(home, "events", "load", str(landing / "a.jsonl"))
    assert again.stdout.splitlines()[-1].startswith("0 events loaded, 0 duplicates skipped")
    assert "already_loaded" in again.stdout


def test_events_load_of_a_missing_path_is_one_line(home: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        run(home, "events", "load", str(tmp_path / "missing")), "no such file or folder"
    )


def test_control_database_url_comes_from_the_environment(
    home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXP_PIPELINE_CONTROL_DB_URL", postgres_url)
    assert run(home, "experiments", "sync", str(CATALOG)).exit_code == 0
    listed = json.loads(run(home, "experiments", "list", "--json").stdout)
    assert len(listed) == 3
    assert not (home / "control.db").exists()


def test_unexpected_errors_are_one_line_without_debug(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXP_PIPELINE_CONTROL_DB_URL", "postgresql+psycopg://nobody@127.0.0.1:1/x")
    monkeypatch.delenv("EXP_PIPELINE_DEBUG", raising=False)
    result = run(home, "experiments", "list")
    assert_one_line_error(result, "unexpected OperationalError")


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exp_pipeline", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    assert "experiments" in result.stdout
    assert "events" in result.stdout


REFERENCE_CATALOG = """\
timezone: UTC
experiments:
  - key: a-b-test
    name: Test Experiment
    feature_flag_key: a-b-test
    start_date: "2020-01-01T00:00"
    end_date: "2020-01-06T00:00"
    metrics:
      - {key: conversion, kind: funnel, steps: ["$pageview", "$pageleave"]}
      - {key: pageviews, kind: trend, event: "$pageview", math: total}
"""


def _reference_events(path: Path) -> Path:
    rows = []
    for who, variant, steps in [
        ("c1", "control", 2),
        ("c2", "control", 2),
        ("t1", "test", 2),
        ("t2", "test", 1),
        ("t3", "test", 1),
    ]:
        for name in ["$pageview", "$pageleave"][:steps]:
            rows.append(
                {
                    "event": name,
                    "distinct_id": who,
                    "timestamp": "2020-01-02T00:00:00Z"
                    if name == "$pageview"
                    else "2020-01-02 00:01",
                    "properties": {"$feature/a-b-test": variant},
                }
            )
    rows.append(
        {
            "event": "$pageview",
            "distinct_id": "late",
            "timestamp": "2020-01-08",
            "properties": {"$feature/a-b-test": "test"},
        }
    )
    rows.append(
        {"event": "$pageview", "distinct_id": "nobody", "timestamp": "2020-01-03", "properties": {}}
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_analyze_writes_the_documented_results_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh temporary home (no --home, no $EXP_PIPELINE_HOME) and the documented schema."""
    monkeypatch.delenv("EXP_PIPELINE_HOME", raising=False)
    monkeypatch.delenv("EXP_PIPELINE_CONTROL_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    catalog = tmp_path / "experiments.yaml"
    catalog.write_text(REFERENCE_CATALOG, encoding="utf-8")
    events = _reference_events(tmp_path / "events.jsonl")
    output = tmp_path / "results.json"

    result = CliRunner().invoke(
        cli,
        [
            "analyze",
            "--events",
            str(events),
            "--experiments",
            str(catalog),
            "--output",
            str(output),
        ],
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert not (tmp_path / ".exp_pipeline").exists()  # nothing left in the default home
    document = json.loads(output.read_text(encoding="utf-8"))
    (experiment,) = document["experiments"]
    assert set(experiment) == {
        "experiment_key",
        "status",
        "timezone",
        "window",
        "exposures",
        "excluded",
        "sample_ratio_mismatch",
        "web_counters",
        "metrics",
        "segments",
    }
    assert experiment["segments"]["attributes"] == []  # the catalog asks for no breakdown
    assert experiment["window"] == {
        "start": "2020-01-01T00:00:00Z",
        "end": "2020-01-06T00:00:00Z",
        "open_ended": False,
    }
    assert experiment["exposures"] == {"control": 2, "test": 3}
    assert experiment["excluded"] == {
        "forced": 0,
        "unknown_variant": 0,
        "multiple_variants": 0,
        "out_of_window": 1,
        "bot": 0,
        "dnt": 0,
        "no_flag": 1,
    }
    funnel, trend = experiment["metrics"]
    assert set(funnel) >= {
        "metric_key",
        "kind",
        "variants",
        "probability",
        "expected_loss",
        "significance_code",
        "significant",
    }
    assert set(funnel["variants"][0]) >= {
        "variant_key",
        "exposures",
        "step_counts",
        "conversion_rate",
        "credible_interval",
    }
    assert funnel["probability"]["test"] == pytest.approx(0.114, abs=1e-3)
    assert (funnel["expected_loss"], funnel["significance_code"]) == (1.0, "not_enough_exposure")
    assert set(trend["variants"][0]) >= {"variant_key", "count", "exposure", "data"}
    assert [v["count"] for v in trend["variants"]] == [2, 3]
    assert "a-b-test (running;" in result.stdout


def test_demo_recovers_the_known_effects(home: Path) -> None:
    """The README's main command: the lifted funnel wins, the null trend does not."""
    result = run(home, "demo")
    assert result.exit_code == 0, result.output
    assert "checkout-funnel (running;" in result.stdout
    documents = json.loads(run(home, "results", "--json").stdout)["experiments"]
    by_key = {d["experiment_key"]: d for d in documents}
    funnel = by_key["checkout-funnel"]["metrics"][0]
    assert funnel["metric_key"] == "purchase_funnel"
    assert funnel["best_variant"] == "test"
    assert funnel["probability"]["test"] > 0.95
    banner = by_key["homepage-banner"]["metrics"][0]
    assert banner["significant"] is False
    assert max(banner["probability"].values()) < 0.9
    listed = json.loads(run(home, "experiments", "list", "--json").stdout)
    assert {e["key"]: e["status"] for e in listed}["new-search"] == "paused"


def test_guardrails_check_and_a_person_resuming(home: Path) -> None:
    """`guardrails check --json` reports the decision; only `experiments resume` undoes it."""
    landing = home / "landing-files"
    landing.mkdir(parents=True)
    rows = [
        {
            "event": name,
            "distinct_id": "u1",
            "timestamp": "2026-11-20T10:00:00Z",
            "properties": {"$feature/new-search": "test"},
        }
        for name in ("app_exposure", "app_error")
    ]
    (landing / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run(home, "experiments", "sync", str(CATALOG))
    run(home, "events", "load", str(landing))

    report = json.loads(run(home, "guardrails", "check", "--json").stdout)

    assert (report["checked"], report["triggered"]) == (1, 1)
    assert report["decisions"][0]["experiment_key"] == "new-search"
    assert report["decisions"][0]["action"] == "pause"
    assert run(home, "experiments", "resume", "new-search").stdout.strip() == (
        "new-search: running"
    )
    assert_one_line_error(
        run(home, "experiments", "resume", "new-search"),
        "can't resume experiment 'new-search' from running to running",
    )
    assert run(home, "experiments", "pause", "new-search", "--reason", "manual").exit_code == 0
    with_switch_off = run(home, "settings", "set", "experiments_enabled", "false")
    assert with_switch_off.exit_code == 0
    off = json.loads(run(home, "guardrails", "check", "--json").stdout)
    assert off == {"checked": 0, "triggered": 0, "decisions": []}
