"""Funnels: ordered steps, first-touch attribution, conversion windows, step counts."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.funnels import build_funnel_metrics
from exp_pipeline.stats import analyse_funnel
from tests.analysis.conftest import Analysed, event, reference_funnel_events

FLAG = "a-b-test"


def funnel_catalog(
    steps: list[str], variants: list[str] | None = None, window_hours: float | None = None
) -> dict[str, Any]:
    metric: dict[str, Any] = {"key": "conversion", "kind": "funnel", "steps": steps}
    if window_hours is not None:
        metric["conversion_window_hours"] = window_hours
    experiment: dict[str, Any] = {
        "key": "a-b-test",
        "name": "Test Experiment",
        "feature_flag_key": FLAG,
        "start_date": "2020-01-01T00:00:00Z",
        "end_date": "2020-01-06T00:00:00Z",
        "metrics": [metric],
    }
    if variants:
        share = 100 / len(variants)
        experiment["variants"] = [{"key": v, "rollout_percentage": share} for v in variants]
    return {"timezone": "UTC", "experiments": [experiment]}


def steps_of(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection, catalog: dict, events: list
) -> dict[str, list[int]]:
    experiment = analysed(catalog, events)
    build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    return build_funnel_metrics(warehouse, experiment)["conversion"]


def test_two_variants_reference_step_counts(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """control [2, 2], test [3, 1]: the reference case of the statistics."""
    events = reference_funnel_events(FLAG)

    steps = steps_of(analysed, warehouse, funnel_catalog(["$pageview", "$pageleave"]), events)

    assert steps == {"control": [2, 2], "test": [3, 1]}


def test_four_variants_unknown_variant_and_first_touch_on_one_event(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    variants = ["control", "test_1", "test_2", "test_3"]
    events = [
        # Flag only on step 1; step 2 still counts.
        event("$pageview", "c", "2020-01-02T00:00:00Z", flag=FLAG, variant="control"),
        event("$pageleave", "c", "2020-01-02T00:01:00Z"),
        # Flag only on step 2: the subject is in test_1 and its step 1 counts too.
        event("$pageview", "t1", "2020-01-02T00:00:00Z"),
        event("$pageleave", "t1", "2020-01-02T00:01:00Z", flag=FLAG, variant="test_1"),
        event("$pageview", "t2", "2020-01-02T00:00:00Z", flag=FLAG, variant="test_2"),
        # Steps out of order: only step 1 is reached.
        event("$pageleave", "t3", "2020-01-02T00:00:00Z", flag=FLAG, variant="test_3"),
        event("$pageview", "t3", "2020-01-02T00:01:00Z", flag=FLAG, variant="test_3"),
        # A variant the experiment does not define: excluded, counted.
        event("$pageview", "u", "2020-01-02T00:00:00Z", flag=FLAG, variant="test_9"),
        event("$pageleave", "u", "2020-01-02T00:01:00Z", flag=FLAG, variant="test_9"),
    ]
    experiment = analysed(funnel_catalog(["$pageview", "$pageleave"], variants), events)
    exposures = build_exposures(warehouse, experiment)
    build_conversions(warehouse, experiment)
    steps = build_funnel_metrics(warehouse, experiment)["conversion"]

    assert exposures.excluded["unknown_variant"] == 1
    assert steps == {"control": [1, 1], "test_1": [1, 1], "test_2": [1, 0], "test_3": [1, 0]}
    # Beta(2, 1) twice and Beta(1, 2) twice: the two converting variants tie, ahead.
    result = analyse_funnel(steps)
    assert result.code == "not_enough_exposure"
    assert result.probabilities["control"] == pytest.approx(result.probabilities["test_1"])
    assert result.probabilities["test_2"] == pytest.approx(result.probabilities["test_3"])
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-9)
    assert result.probabilities["control"] > result.probabilities["test_2"]


def test_conversion_window_counts_from_each_step_one(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        # A later start completes within the hour: reached.
        event("a", "late-start", "2020-01-02T10:00:00Z", flag=FLAG, variant="test"),
        event("a", "late-start", "2020-01-02T12:00:00Z"),
        event("b", "late-start", "2020-01-02T12:30:00Z"),
        # Completes, but 90 minutes after its only start: not within the hour.
        event("a", "slow", "2020-01-02T10:00:00Z", flag=FLAG, variant="test"),
        event("b", "slow", "2020-01-02T11:30:00Z"),
    ]
    with_window = steps_of(analysed, warehouse, funnel_catalog(["a", "b"], window_hours=1), events)
    assert with_window == {"control": [0, 0], "test": [2, 1]}
    completed = warehouse.execute(
        "SELECT distinct_id, funnel_step, strftime(first_conversion_utc, '%H:%M') "
        "FROM conversions ORDER BY distinct_id"
    ).fetchall()
    assert completed == [("late-start", 2, "12:30"), ("slow", 1, None)]


def test_without_a_window_the_earliest_start_is_used(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        event("a", "slow", "2020-01-02T10:00:00Z", flag=FLAG, variant="test"),
        event("b", "slow", "2020-01-03T11:30:00Z"),
        event("b", "slow", "2020-01-04T11:30:00Z"),  # later events do not move the time
    ]
    steps = steps_of(analysed, warehouse, funnel_catalog(["a", "b"]), events)
    assert steps == {"control": [0, 0], "test": [1, 1]}
    row = warehouse.execute(
        "SELECT strftime(first_conversion_utc, '%Y-%m-%dT%H:%M'), event_count FROM conversions"
    ).fetchone()
    assert row == ("2020-01-03T11:30", 3)


def test_repeated_step_names_need_distinct_events(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        event("$pageview", "once", "2020-01-02T10:00:00Z", flag=FLAG, variant="control"),
        event("$pageview", "twice", "2020-01-02T10:00:00Z", flag=FLAG, variant="control"),
        event(
            "$pageview", "twice", "2020-01-02T10:00:00Z", flag=FLAG, variant="control", extra=1
        ),  # same instant, another event
    ]
    steps = steps_of(analysed, warehouse, funnel_catalog(["$pageview", "$pageview"]), events)
    assert steps == {"control": [2, 1], "test": [0, 0]}


def test_events_outside_the_window_or_from_bots_do_not_convert(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        event("a", "u", "2020-01-02T10:00:00Z", flag=FLAG, variant="test"),
        event("b", "u", "2020-01-06T00:00:01Z"),  # one second past the end
        event("b", "u", "2020-01-03T00:00:00Z", **{"$user_agent": "AhrefsBot"}),
        event("b", "u", "2020-01-03T00:00:00Z", **{"$dnt": True}),
    ]
    steps = steps_of(analysed, warehouse, funnel_catalog(["a", "b"]), events)
    assert steps == {"control": [0, 0], "test": [1, 0]}
