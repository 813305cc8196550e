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
    assert run(home, "settings", "list").stdout.strip() == "experiments_enabled = true"
    assert run(home, "settings", "set", "experiments_enabled", "false").exit_code == 0
    assert run(home, "settings", "list").stdout.strip() == "experiments_enabled = false"
    assert_one_line_error(
        run(home, "settings", "set", "experiments_enabled", "nope"),
        "setting 'experiments_enabled' takes true or false, not 'nope'",
    )
    assert_one_line_error(run(home, "settings", "set", "bogus", "1"), "unknown setting 'bogus'")
    assert run(home, "settings", "list").stdout.strip() == "experiments_enabled = false"


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
