"""Exposure rules: window, first touch, and every exclusion reason, counted once each."""

from __future__ import annotations

from typing import Any

import duckdb

from exp_pipeline.analysis.exposures import build_exposures
from tests.analysis.conftest import Analysed, event, flag_called


def catalog(**overrides: Any) -> dict[str, Any]:
    experiment = {
        "key": "a-b-test",
        "name": "Test Experiment",
        "feature_flag_key": "a-b-test",
        "start_date": "2020-01-01T00:00:00Z",
        "end_date": "2020-01-06T00:00:00Z",
        "metrics": [{"key": "conversion", "kind": "funnel", "steps": ["$pageview", "$pageleave"]}],
        **overrides,
    }
    return {"timezone": "UTC", "experiments": [experiment]}


def test_every_subject_lands_in_exactly_one_bucket(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    f = "a-b-test"
    events = [
        event("$pageview", "c1", "2020-01-02T00:00:00Z", flag=f, variant="control"),
        event("$pageview", "t1", "2020-01-02T00:00:00Z", flag=f, variant="test"),
        # Out of window only (a day after the end).
        event("$pageview", "late", "2020-01-07T00:00:00Z", flag=f, variant="test"),
        # No flag at all, but active in the window.
        event("$pageview", "nobody", "2020-01-03T00:00:00Z"),
        # Two variants in the window.
        event("$pageview", "both", "2020-01-02T00:00:00Z", flag=f, variant="control"),
        event("$pageview", "both", "2020-01-03T00:00:00Z", flag=f, variant="test"),
        # A variant the experiment does not define.
        event("$pageview", "stale", "2020-01-02T00:00:00Z", flag=f, variant="old"),
        # Bot and Do-Not-Track subjects.
        event(
            "$pageview",
            "crawler",
            "2020-01-02T00:00:00Z",
            flag=f,
            variant="test",
            **{"$user_agent": "Googlebot/2.1"},
        ),
        event(
            "$pageview", "private", "2020-01-02T00:00:00Z", flag=f, variant="test", **{"$dnt": 1}
        ),
        # A second flag is another experiment's business.
        event("$pageview", "other", "2020-01-02T00:00:00Z", flag="other-flag", variant="test"),
    ]
    experiment = analysed(catalog(), events)

    summary = build_exposures(warehouse, experiment)

    assert summary.exposures == {"control": 1, "test": 1}
    assert summary.excluded == {
        "forced": 0,
        "unknown_variant": 1,
        "multiple_variants": 1,
        "out_of_window": 1,
        "bot": 1,
        "dnt": 1,
        "no_flag": 2,  # "nobody" and "other"
    }


def test_first_touch_time_source_and_local_time(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    f = "a-b-test"
    events = [
        event("$pageview", "u1", "2020-01-02T10:00:00Z"),  # no flag: not an exposure
        flag_called("u1", "2020-01-02T11:00:00Z", f, "test"),
        event("$pageview", "u1", "2020-01-02T12:00:00Z", flag=f, variant="test"),
        event("$pageview", "u1", "2019-12-31T12:00:00Z", flag=f, variant="control"),  # before
    ]
    experiment = analysed(catalog(timezone="America/New_York"), events)

    summary = build_exposures(warehouse, experiment)

    assert summary.exposures == {"control": 0, "test": 1}
    assert summary.excluded["multiple_variants"] == 0  # the control signal is out of window
    row = warehouse.execute(
        "SELECT variant, strftime(first_exposure_utc, '%Y-%m-%dT%H:%M:%SZ'), "
        "strftime(first_exposure_local, '%Y-%m-%dT%H:%M:%S'), exposure_source FROM exposures"
    ).fetchone()
    assert row == ("test", "2020-01-02T11:00:00Z", "2020-01-02T06:00:00", "flag_called")


def test_rebuilding_is_idempotent_and_scoped_to_the_experiment(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [event("$pageview", "c1", "2020-01-02T00:00:00Z", flag="a-b-test", variant="control")]
    experiment = analysed(catalog(), events)
    warehouse.execute(
        "CREATE TABLE IF NOT EXISTS exposures AS SELECT 'other' AS experiment_key, "
        "'x' AS distinct_id, 'control' AS variant, now() AS first_exposure_utc, "
        "now()::TIMESTAMP AS first_exposure_local, 'property' AS exposure_source"
    )
    first = build_exposures(warehouse, experiment)
    second = build_exposures(warehouse, experiment)
    assert first == second
    assert warehouse.execute(
        "SELECT experiment_key, count(*) FROM exposures GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("a-b-test", 1), ("other", 1)]


def test_window_with_z_start_and_naive_end_under_a_non_utc_project_timezone(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """A naive end is UTC whatever the project timezone: minutes past it are out."""
    f = "a-b-test"
    doc = catalog(start_date="2020-01-01T00:00:00Z", end_date="2020-01-06T00:00")
    doc["timezone"] = "Asia/Tokyo"
    events = [
        event("$pageview", "inside", "2020-01-05T23:58:00Z", flag=f, variant="control"),
        event("$pageview", "at-end", "2020-01-06T00:00:00Z", flag=f, variant="control"),
        event("$pageview", "past", "2020-01-06T00:03:00Z", flag=f, variant="test"),
        event("$pageview", "past-naive", "2020-01-06 00:05:00", flag=f, variant="test"),
    ]
    experiment = analysed(doc, events)

    summary = build_exposures(warehouse, experiment)

    assert experiment.timezone == "Asia/Tokyo"
    assert experiment.end_utc.isoformat() == "2020-01-06T00:00:00+00:00"
    assert summary.exposures == {"control": 2, "test": 0}
    assert summary.excluded["out_of_window"] == 2


def test_forced_qa_subjects_are_excluded_and_counted(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """A QA override is served a variant but never randomly assigned: excluded as `forced`
    before any other reason, and its events never reach the analysis."""
    flag = "qa-flag"
    catalog = {
        "experiments": [
            {
                "key": "qa",
                "name": "QA",
                "feature_flag_key": flag,
                "start_date": "2026-11-01T00:00:00Z",
                "end_date": "2026-11-10T00:00:00Z",
                "metrics": [{"key": "views", "kind": "trend", "event": "$pageview"}],
            }
        ]
    }
    when = "2026-11-02T10:00:00Z"
    events = [
        event("$pageview", "u1", when, flag=flag, variant="test"),
        event(
            "$pageview", "qa1", when, flag=flag, variant="test", **{"$feature_flag_forced": True}
        ),
        event("$pageview", "qa1", "2026-11-02T11:00:00Z", flag=flag, variant="control"),
        event("$pageview", "qa2", when, flag=flag, variant="control", force_experiment="qa"),
    ]
    summary = build_exposures(warehouse, analysed(catalog, events))
    assert summary.exposures == {"control": 0, "test": 1}
    assert summary.excluded["forced"] == 2
    assert summary.excluded["multiple_variants"] == 0
    assert summary.flagged == 3
