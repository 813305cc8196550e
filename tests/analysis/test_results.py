"""Results documents: the reference verdicts, end to end from events to probabilities."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.funnels import build_funnel_metrics
from exp_pipeline.analysis.results import build_experiment_results, read_result_documents
from exp_pipeline.analysis.trends import build_trend_metrics
from tests.analysis.conftest import Analysed, event, flag_called, reference_funnel_events

FLAG = "a-b-test"
NOW = datetime(2026, 11, 23, tzinfo=UTC)
CATALOG = {
    "timezone": "UTC",
    "experiments": [
        {
            "key": "a-b-test",
            "name": "Test Experiment",
            "feature_flag_key": FLAG,
            "start_date": "2020-01-01T00:00:00Z",
            "end_date": "2020-01-06T00:00:00Z",
            "metrics": [
                {"key": "conversion", "kind": "funnel", "steps": ["$pageview", "$pageleave"]},
                {"key": "pageviews", "kind": "trend", "event": "$pageview", "math": "total"},
            ],
        }
    ],
}


def reference_events() -> list[dict]:
    """Funnel control [2, 2], test [3, 1]; trend pageviews control 2, test 3 (events)."""
    events = reference_funnel_events(FLAG)
    events.append(event("$pageview", "late", "2020-01-07T00:00:00Z", flag=FLAG, variant="test"))
    events.append(event("$pageview", "nobody", "2020-01-03T00:00:00Z"))
    return events


def analyse(analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, events: list) -> dict:
    experiment = analysed(CATALOG, events)
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    build_funnel_metrics(warehouse, experiment)
    build_trend_metrics(warehouse, experiment)
    return build_experiment_results(warehouse, experiment, NOW)


def test_funnel_reference_verdict(analysed: Analysed, warehouse: duckdb.DuckDBPyConnection) -> None:
    document = analyse(analysed, warehouse, reference_events())

    assert document["exposures"] == {"control": 2, "test": 3}
    assert document["excluded"] == {
        "forced": 0,
        "unknown_variant": 0,
        "multiple_variants": 0,
        "out_of_window": 1,
        "bot": 0,
        "dnt": 0,
        "no_flag": 1,
    }
    funnel = document["metrics"][0]
    assert [v["step_counts"] for v in funnel["variants"]] == [[2, 2], [3, 1]]
    assert funnel["probability"]["test"] == pytest.approx(0.114, abs=1e-3)
    assert funnel["probability"]["control"] == pytest.approx(0.886, abs=1e-3)
    assert funnel["expected_loss"] == 1.0
    assert funnel["significance_code"] == "not_enough_exposure"
    assert funnel["significant"] is False
    assert funnel["variants"][0]["conversion_rate"] == 1.0
    # Completions per calendar day of the window, zeros included.
    assert funnel["variants"][0]["days"] == [f"2020-01-0{d}" for d in range(1, 7)]
    assert [v["data"] for v in funnel["variants"]] == [[0, 2, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]]
    assert funnel["variants"][0]["posterior"] == {
        "distribution": "beta",
        "alpha": 3.0,
        "beta": 1.0,
        "mean": 0.75,
    }
    assert funnel["variants"][1]["posterior"] == {
        "distribution": "beta",
        "alpha": 2.0,
        "beta": 3.0,
        "mean": 0.4,
    }


def test_trend_reference_verdict(analysed: Analysed, warehouse: duckdb.DuckDBPyConnection) -> None:
    """test exposure 1 and count 5, control exposure 2 and count 4: P(test best) 0.923."""
    events = [
        flag_called("t1", "2020-01-02T00:00:00Z", FLAG, "test"),
        flag_called("c1", "2020-01-02T00:00:00Z", FLAG, "control"),
        flag_called("c2", "2020-01-02T00:00:00Z", FLAG, "control"),
        *[
            event("$pageview", "t1", f"2020-01-0{d}T10:00:00Z", flag=FLAG, variant="test")
            for d in (1, 2, 3, 4, 5)
        ],
        *[
            event("$pageview", "c1", f"2020-01-0{d}T10:00:00Z", flag=FLAG, variant="control")
            for d in (2, 3, 4, 5)
        ],
    ]
    trend = analyse(analysed, warehouse, events)["metrics"][1]

    assert [(v["count"], v["exposure"]) for v in trend["variants"]] == [(4, 2), (5, 1)]
    assert [v["posterior"] for v in trend["variants"]] == [
        {"distribution": "gamma", "shape": 5.0, "rate": 1.0, "mean": 5.0},
        {"distribution": "gamma", "shape": 6.0, "rate": 0.5, "mean": 12.0},
    ]
    assert trend["probability"]["test"] == pytest.approx(0.923, abs=1e-3)
    assert trend["significant"] is False
    assert len(trend["variants"][0]["data"]) == 6


def test_results_are_stored_flat_and_as_documents_idempotently(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    first = analyse(analysed, warehouse, reference_events())
    second = analyse(analysed, warehouse, [])  # same events already loaded: no new rows
    assert first == second
    assert read_result_documents(warehouse) == [first]
    rows = warehouse.execute(
        "SELECT metric_key, variant, is_primary, exposures, value, round(probability_best, 3), "
        "significance_code FROM experiment_results ORDER BY metric_key, variant"
    ).fetchall()
    assert rows == [
        ("conversion", "control", True, 2, 2.0, 0.886, "not_enough_exposure"),
        ("conversion", "test", True, 3, 1.0, 0.114, "not_enough_exposure"),
        ("pageviews", "control", False, 0, 2.0, 0.344, "not_enough_exposure"),
        ("pageviews", "test", False, 0, 3.0, 0.656, "not_enough_exposure"),
    ]


def test_results_are_bit_identical_across_runs(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    documents = {repr(analyse(analysed, warehouse, reference_events())) for _ in range(3)}
    assert len(documents) == 1
