"""Trends: events carrying the variant, `$feature_flag_called` exposure, daily series."""

from __future__ import annotations

from typing import Any

import duckdb

from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.trends import build_trend_metrics
from tests.analysis.conftest import Analysed, event, flag_called

FLAG = "a-b-test"


def trend_catalog(math: str = "total", **overrides: Any) -> dict[str, Any]:
    experiment = {
        "key": "a-b-test",
        "name": "Test Experiment",
        "feature_flag_key": FLAG,
        "start_date": "2020-01-01T00:00:00Z",
        "end_date": "2020-01-06T00:00:00Z",
        "metrics": [{"key": "pageviews", "kind": "trend", "event": "$pageview", "math": math}],
        **overrides,
    }
    return {"timezone": "UTC", "experiments": [experiment]}


def test_reference_counts_and_flag_called_exposure(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """test: exposure 1, count 5; control: exposure 2, count 4."""
    events = [
        flag_called("t1", "2020-01-02T00:00:00Z", FLAG, "test"),
        flag_called("c1", "2020-01-02T00:00:00Z", FLAG, "control"),
        flag_called("c2", "2020-01-02T00:00:00Z", FLAG, "control"),
        flag_called("c2", "2020-01-03T00:00:00Z", FLAG, "control"),  # same subject again
        flag_called("late", "2020-01-07T00:00:00Z", FLAG, "test"),  # out of window
        *[
            event("$pageview", "t1", f"2020-01-0{d}T10:00:00Z", flag=FLAG, variant="test")
            for d in (1, 2, 3, 4, 5)
        ],
        *[
            event("$pageview", "c1", f"2020-01-0{d}T10:00:00Z", flag=FLAG, variant="control")
            for d in (2, 3, 4, 5)
        ],
        # Not counted: no flag, another event, a bot, after the window.
        event("$pageview", "c1", "2020-01-02T11:00:00Z"),
        event("$pageleave", "c1", "2020-01-02T11:00:00Z", flag=FLAG, variant="control"),
        event(
            "$pageview",
            "bot",
            "2020-01-02T11:00:00Z",
            flag=FLAG,
            variant="control",
            **{"$user_agent": "bingbot"},
        ),
        event("$pageview", "c1", "2020-01-06T00:00:01Z", flag=FLAG, variant="control"),
    ]
    experiment = analysed(trend_catalog(), events)
    build_exposures(warehouse, experiment)

    series = build_trend_metrics(warehouse, experiment)["pageviews"]

    assert (series["test"].count, series["test"].exposure) == (5, 1)
    assert (series["control"].count, series["control"].exposure) == (4, 2)
    days = ["2020-01-0" + str(d) for d in range(1, 7)]
    assert series["test"].days == days
    assert series["test"].data == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    assert series["control"].data == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_avg_count_per_actor_covers_every_day_with_zeros(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        event("$pageview", "a", "2020-01-02T10:00:00Z", flag=FLAG, variant="test"),
        event("$pageview", "a", "2020-01-02T11:00:00Z", flag=FLAG, variant="test"),
        event("$pageview", "a", "2020-01-02T12:00:00Z", flag=FLAG, variant="test"),
        event("$pageview", "b", "2020-01-02T12:00:00Z", flag=FLAG, variant="test"),
        event("$pageview", "b", "2020-01-04T12:00:00Z", flag=FLAG, variant="test"),
        event("$pageview", "c", "2020-01-04T12:00:00Z", flag=FLAG, variant="control"),
    ]
    experiment = analysed(trend_catalog("avg_count_per_actor"), events)

    series = build_trend_metrics(warehouse, experiment)["pageviews"]

    assert series["test"].data == [0.0, 2.0, 0.0, 1.0, 0.0, 0.0]  # (3 + 1) / 2 on Jan 2
    assert series["control"].data == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert series["test"].count == 5


def test_days_are_calendar_days_of_the_experiment_timezone(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """23:30 UTC on Jan 1 is already Jan 2 in Amsterdam; the window spans 6 local days."""
    events = [
        event("$pageview", "a", "2020-01-01T23:30:00Z", flag=FLAG, variant="test"),
    ]
    experiment = analysed(trend_catalog(timezone="Europe/Amsterdam"), events)

    series = build_trend_metrics(warehouse, experiment)["pageviews"]

    assert series["test"].days == ["2020-01-0" + str(d) for d in range(1, 7)]
    assert series["test"].data == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_no_flag_called_events_give_zero_exposure(
    analysed: Analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [event("$pageview", "a", "2020-01-02T10:00:00Z", flag=FLAG, variant="test")]
    experiment = analysed(trend_catalog(), events)
    series = build_trend_metrics(warehouse, experiment)["pageviews"]
    assert (series["test"].exposure, series["control"].exposure) == (0, 0)
