"""The code location and the whole asset graph, materialised for real.

`Definitions.validate_loadable` is what `dagster dev -w workspace.yaml` needs to succeed.
The end-to-end tests generate seeded demo data, materialise the real graph with
`dagster.materialize` on a real DuckDB file and a real control database (SQLite and
PostgreSQL), and check the warehouse against the generator's exact anomaly counts.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from definitions import build_definitions, dagster_instance, defs, materialize_graph
from exp_pipeline.catalog import load_catalog
from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.control.queries import live_experiments
from exp_pipeline.demo.generator import DemoSummary, generate_demo_data
from exp_pipeline.settings import PipelineSettings

DEMO_EVENTS = 6_000


def test_the_code_location_loads_and_validates() -> None:
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "experiment_catalog",
        "experiment_definitions",
        "raw_events",
        "exposures",
        "conversions",
        "funnel_metrics",
        "trend_metrics",
    }
    assert defs.resolve_job_def("daily_ingest") is not None


def test_workspace_points_at_the_definitions_module() -> None:
    workspace = (Path(__file__).resolve().parent.parent / "workspace.yaml").read_text()
    assert "python_module" in workspace
    assert "definitions" in workspace


def _settings(home: Path, control_url: str, monkeypatch: pytest.MonkeyPatch) -> PipelineSettings:
    if not control_url.startswith("sqlite"):
        monkeypatch.setenv("EXP_PIPELINE_CONTROL_DB_URL", control_url)
    return PipelineSettings.load(home=home)


def _demo(settings: PipelineSettings) -> DemoSummary:
    catalog = load_catalog(settings.catalog_path)
    return generate_demo_data(settings.landing_dir, catalog, n_events=DEMO_EVENTS, seed=3)


def materializations(
    results: list[dg.ExecuteInProcessResult], asset: str
) -> list[dg.DagsterEvent]:
    """The materialisation events of `asset` across the runs of one graph materialisation."""
    return [
        m
        for r in results
        for m in r.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(asset)
    ]


def _warehouse_counts(settings: PipelineSettings) -> dict[str, object]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {
            "events": con.execute("SELECT count(*) FROM events").fetchone()[0],
            "quarantine": dict(
                con.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason").fetchall()
            ),
            "duplicates": con.execute("SELECT sum(duplicates) FROM loaded_files").fetchone()[0],
            "bot_events": con.execute("SELECT count(*) FROM events WHERE is_bot").fetchone()[0],
            "dnt_events": con.execute("SELECT count(*) FROM events WHERE is_dnt").fetchone()[0],
            "definitions": con.execute(
                "SELECT experiment_key, status FROM experiment_definitions ORDER BY 1"
            ).fetchall(),
        }


def test_materialize_the_whole_graph_end_to_end(
    home: Path, control_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(home, control_url, monkeypatch)
    demo = _demo(settings)
    days = list(demo.days)

    results = materialize_graph(settings, days)

    assert all(r.success for r in results)
    counts = _warehouse_counts(settings)
    anomalies = demo.anomalies
    assert counts["events"] == demo.events_written
    assert counts["duplicates"] == anomalies["duplicate_events"]
    assert counts["quarantine"] == {
        reason: n
        for reason, n in {
            "malformed_json": anomalies["invalid_json_lines"],
            "missing_distinct_id": anomalies["missing_distinct_id"],
            "invalid_timestamp": anomalies["bad_timestamp"],
            "invalid_properties": anomalies["properties_not_object"],
            "malformed_csv_row": anomalies["csv_extra_columns"],
        }.items()
        if n
    }
    assert counts["bot_events"] == anomalies["bot_events"]
    assert counts["dnt_events"] == anomalies["dnt_events"]
    assert counts["definitions"] == [
        ("checkout-funnel", "running"),
        ("homepage-banner", "running"),
        ("new-search", "running"),
    ]
    with ControlDatabase(settings.control_db_url).session() as session:
        assert [e.key for e in live_experiments(session)] == [
            "checkout-funnel",
            "homepage-banner",
            "new-search",
        ]

    # Metadata an analyst reads in the UI, one materialisation per partition of the range.
    raw = materializations(results, "raw_events")
    assert sorted(m.partition for m in raw) == days
    metadata = raw[0].materialization.metadata
    assert metadata["rows_loaded"].value == demo.events_written
    assert metadata["duplicates_skipped"].value == anomalies["duplicate_events"]
    assert metadata["rows_quarantined"].value == sum(counts["quarantine"].values())

    # Re-running the whole graph changes nothing.
    again = materialize_graph(settings, days)
    assert all(r.success for r in again)
    assert _warehouse_counts(settings) == counts
    rerun = materializations(again, "raw_events")
    assert rerun[0].materialization.metadata["rows_loaded"].value == 0
    assert rerun[0].materialization.metadata["files_already_loaded"].value == len(demo.files)


def test_the_daily_job_loads_one_partition(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(home, "sqlite", monkeypatch)
    demo = _demo(settings)
    job = build_definitions(settings).resolve_job_def("daily_ingest")
    day = demo.days[3]

    result = job.execute_in_process(partition_key=day, instance=dagster_instance(settings))

    assert result.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        files = {r[0] for r in con.execute("SELECT path FROM loaded_files").fetchall()}
        definitions = con.execute("SELECT count(*) FROM experiment_definitions").fetchone()[0]
    assert files == {str(settings.landing_dir / f) for f in demo.files if f.startswith(day)}
    assert definitions == 3


def test_the_schedule_requests_yesterdays_partition() -> None:
    schedule = defs.resolve_schedule_def("daily_ingest_schedule")
    tick = dt.datetime(2026, 11, 12, 1, 30, tzinfo=dt.UTC)
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2026-11-11"]
