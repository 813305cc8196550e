"""The code location and the whole asset graph, materialised for real.

`Definitions.validate_loadable` is what `dagster dev -w workspace.yaml` needs to succeed.
The end-to-end tests generate seeded demo data, materialise the real graph with
`dagster.materialize` on a real DuckDB file and a real control database (SQLite and
PostgreSQL), and check the warehouse against the generator's exact anomaly counts.
"""

import datetime as dt
import json
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
        "subject_context",
        "conversions",
        "funnel_metrics",
        "trend_metrics",
        "experiment_results",
        "guardrail_metrics",
        "flags_snapshot",
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


def _demo(settings: PipelineSettings, n_events: int = DEMO_EVENTS, seed: int = 3) -> DemoSummary:
    catalog = load_catalog(settings.catalog_path)
    return generate_demo_data(settings.landing_dir, catalog, n_events=n_events, seed=seed)


def materializations(results: list[dg.ExecuteInProcessResult], asset: str) -> list[dg.DagsterEvent]:
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

    # Asset checks ran with the materialisations: the demo's data is healthy.
    checks = [
        (c.asset_key.to_user_string(), c.check_name, c.passed)
        for r in results
        for c in r.get_asset_check_evaluations()
    ]
    assert {(asset, name) for asset, name, _ in checks} == {
        ("raw_events", "quarantine_share"),
        ("exposures", "multiple_variant_subjects"),
        ("exposures", "exposure_freshness"),
        ("experiment_results", "sample_ratio_mismatch"),
    }
    healthy = ("quarantine_share", "sample_ratio_mismatch")
    assert all(passed for _, name, passed in checks if name in healthy)
    srm = [c for c in checks if c[1] == "sample_ratio_mismatch"]
    assert len(srm) == 3  # one per experiment partition

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


def test_the_partition_sensor_follows_the_control_database(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started experiments gain a partition; deleted ones lose it; drafts never get one."""
    from exp_pipeline.catalog import parse_catalog
    from exp_pipeline.control.lifecycle import get_live_experiment, soft_delete
    from exp_pipeline.control.sync import sync_catalog
    from sensors.experiment_partitions import experiment_partitions_sensor

    settings = _settings(home, "sqlite", monkeypatch)
    db = ControlDatabase(settings.control_db_url)
    base = {"metrics": [{"key": "m", "kind": "trend", "event": "e"}]}
    catalog = parse_catalog(
        {
            "experiments": [
                {**base, "key": k, "feature_flag_key": k, "name": k, "start_date": start}
                for k, start in [("started", "2026-01-01"), ("draft", None), ("gone", "2026-01-01")]
            ]
        }
    )
    with db.session() as session:
        sync_catalog(session, catalog)
    instance = dagster_instance(settings)
    resources = build_definitions(settings).resources

    def tick() -> list:
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            return experiment_partitions_sensor(context).dynamic_partitions_requests

    (added,) = tick()
    assert isinstance(added, dg.AddDynamicPartitionsRequest)
    assert list(added.partition_keys) == ["gone", "started"]
    instance.add_dynamic_partitions("experiments", ["gone", "started"])
    assert tick() == []
    with db.session() as session:
        soft_delete(session, get_live_experiment(session, "gone"), actor="test")
    (removed,) = tick()
    assert isinstance(removed, dg.DeleteDynamicPartitionsRequest)
    assert list(removed.partition_keys) == ["gone"]


def test_the_analysis_schedule_requests_every_experiment_once_a_day(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(home, "sqlite", monkeypatch)
    instance = dagster_instance(settings)
    instance.add_dynamic_partitions("experiments", ["b-test", "a-test"])
    schedule = defs.resolve_schedule_def("daily_analysis_schedule")
    tick = dt.datetime(2026, 11, 12, 2, 30, tzinfo=dt.UTC)
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("a-test", "a-test:2026-11-12"),
        ("b-test", "b-test:2026-11-12"),
    ]


def test_the_guardrail_sensor_pauses_the_breaching_demo_experiment(
    home: Path, control_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """guardrail_metrics writes the aggregates; the sensor, reading only them, pauses."""
    from definitions import tick_guardrail_sensor

    settings = _settings(home, control_url, monkeypatch)
    # The demo's default seed; enough events that its last hour of data shows the breach.
    demo = _demo(settings, n_events=20_000, seed=7)
    materialize_graph(settings, list(demo.days))

    result = tick_guardrail_sensor(settings)

    cursor = json.loads(result.cursor)
    assert cursor["acted_on"] == ["new-search"]
    assert cursor["checked"] == 1
    with ControlDatabase(settings.control_db_url).session() as session:
        status = {e.key: e.status for e in live_experiments(session)}
    assert status == {
        "checkout-funnel": "running",
        "homepage-banner": "running",
        "new-search": "paused",
    }
    again = tick_guardrail_sensor(settings)  # a repeated tick decides nothing new
    assert json.loads(again.cursor)["acted_on"] == []
    assert again.skip_reason is not None


def test_a_sensor_tick_while_a_materialisation_holds_duckdb(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sensor never opens DuckDB, so it ticks cleanly while a run writes it."""
    import subprocess
    import sys

    from definitions import tick_guardrail_sensor

    settings = _settings(home, "sqlite", monkeypatch)
    demo = _demo(settings)
    materialize_graph(settings, list(demo.days))
    writer = subprocess.Popen(
        [sys.executable, "-m", "exp_pipeline", "--home", str(home), "materialize"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ticks = []
    while writer.poll() is None:
        ticks.append(tick_guardrail_sensor(settings))
    _, err = writer.communicate()
    assert writer.returncode == 0, err
    assert len(ticks) >= 1
    assert all(json.loads(t.cursor)["checked"] >= 0 for t in ticks)


def test_the_flags_snapshot_sensor_requests_a_refresh_per_decision(
    home: Path, control_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new decision (or the kill switch) requests one run; the same state requests none."""
    from exp_pipeline.control.global_settings import set_setting
    from exp_pipeline.control.lifecycle import get_live_experiment, transition
    from exp_pipeline.control.sync import sync_catalog
    from sensors.flags import flags_snapshot_sensor

    settings = _settings(home, control_url, monkeypatch)
    db = ControlDatabase(settings.control_db_url)
    with db.session() as session:
        sync_catalog(session, load_catalog(settings.catalog_path))
    instance = dagster_instance(settings)
    resources = build_definitions(settings).resources

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=instance, resources=resources, cursor=cursor
        ) as context:
            return flags_snapshot_sensor(context)

    first = tick(None)
    (request,) = first.run_requests
    assert request.run_key == f"flags:{first.cursor}"
    assert tick(first.cursor).run_requests == []
    with db.session() as session:
        transition(session, get_live_experiment(session, "new-search"), "pause", actor="t")
    after_pause = tick(first.cursor)
    assert len(after_pause.run_requests) == 1
    assert after_pause.cursor != first.cursor
    with db.session() as session:
        set_setting(session, "experiments_enabled", False)
    assert tick(after_pause.cursor).cursor.endswith(":off")


def test_the_flags_snapshot_asset_publishes_what_decide_reads(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from definitions import publish_flags_snapshot
    from exp_pipeline.flags import decide, parse_snapshot

    settings = _settings(home, "sqlite", monkeypatch)
    materialize_graph(settings, [])
    snapshot = parse_snapshot(settings.flags_snapshot_path.read_text(encoding="utf-8"))
    assert set(snapshot["flags"]) == {"one-page-checkout", "homepage-banner", "new-search"}
    assert decide(snapshot, "new-search", "user-1").reason == "experiment_assigned"
    with ControlDatabase(settings.control_db_url).session() as session:
        from exp_pipeline.control.lifecycle import get_live_experiment, transition

        transition(session, get_live_experiment(session, "new-search"), "pause", actor="t")
    result = publish_flags_snapshot(settings)
    assert result.success
    refreshed = parse_snapshot(settings.flags_snapshot_path.read_text(encoding="utf-8"))
    assert refreshed["version"] > snapshot["version"]
    assert decide(refreshed, "new-search", "user-1").reason == "not_running"
