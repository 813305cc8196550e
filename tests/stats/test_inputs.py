"""Per-variant aggregates are validated before any maths, with errors naming the problem."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exp_pipeline.errors import ExpPipelineError
from exp_pipeline.stats.inputs import (
    FunnelCounts,
    StatsInputError,
    TrendCounts,
    check_count,
    funnel_counts,
    trend_counts,
)


def test_funnel_counts_take_first_and_last_step_with_control_first() -> None:
    counts = funnel_counts({"test": [990, 450, 160], "control": [1000, 420, 130]}, "control")
    assert list(counts) == ["control", "test"]
    assert counts["control"] == FunnelCounts(first_step=1000, last_step=130)
    assert (counts["test"].successes, counts["test"].failures) == (160, 830)


def test_a_one_step_funnel_converts_everyone_who_entered() -> None:
    counts = funnel_counts({"control": [40], "test": [50]}, "control")
    assert (counts["test"].successes, counts["test"].failures) == (50, 0)


def test_numpy_and_float_counts_are_accepted() -> None:
    counts = funnel_counts({"control": np.array([10, 4]), "b": [np.int64(7), 2.0]}, "control")
    assert counts["b"] == FunnelCounts(7.0, 2.0)


def test_trend_counts_keep_missing_exposures_as_unknown() -> None:
    counts = trend_counts({"control": 4, "a": 5, "b": 6}, {"control": 2, "a": 1}, "control")
    assert counts == {
        "control": TrendCounts(4, 2),
        "a": TrendCounts(5, 1),
        "b": TrendCounts(6, None),
    }
    assert all(
        c.exposure is None for c in trend_counts({"control": 1, "a": 2}, None, "control").values()
    )


def test_input_errors_are_value_errors_the_cli_prints() -> None:
    assert issubclass(StatsInputError, ValueError)
    assert issubclass(StatsInputError, ExpPipelineError)


@pytest.mark.parametrize(
    ("steps", "control", "message"),
    [
        ({"test": [10, 5]}, "control", "control variant 'control' is missing"),
        ({"control": [10, 5]}, "control", "at least two variants"),
        ({"control": [10, 5], "test": [10, -1]}, "control", "variant 'test' step 2"),
        ({"control": [10, 5], "test": [3, 4]}, "control", "variant 'test': step 2 has 4"),
        ({"control": [10, 5], "test": [3, 2, 3]}, "control", "step 3 has 3 subjects, more"),
        ({"control": [10, 5], "test": []}, "control", "non-empty sequence"),
        ({"control": [10, 5], "test": "10"}, "control", "non-empty sequence"),
        ({"control": [10, 5], "test": 10}, "control", "non-empty sequence"),
        ({"control": [10, 5], "test": {"a": 1}}, "control", "non-empty sequence"),
        ({"control": [10, 5], "test": [math.nan, 1]}, "control", "finite non-negative"),
        ({"control": [10, 5], "test": [math.inf, 1]}, "control", "finite non-negative"),
        ({"control": [10, 5], "test": [True, 1]}, "control", "must be a number"),
        ({"control": [10, 5], "test": ["10", 1]}, "control", "must be a number"),
        ({"control": [10, 5], "": [10, 1]}, "control", "non-empty strings"),
    ],
)
def test_bad_funnel_inputs_name_the_problem(
    steps: dict[str, object], control: str, message: str
) -> None:
    with pytest.raises(StatsInputError, match=message):
        funnel_counts(steps, control)


@pytest.mark.parametrize(
    ("counts", "exposures", "message"),
    [
        ({"control": 4, "test": -5}, None, "variant 'test' count"),
        ({"control": 4, "test": 5}, {"control": -2}, "variant 'control' exposure"),
        (
            {"control": 4, "test": 5},
            {"tset": 3},
            r"exposures given for variants without counts: \['tset'\]",
        ),
        ({"test": 5, "other": 1}, None, "control variant 'control' is missing"),
    ],
)
def test_bad_trend_inputs_name_the_problem(
    counts: dict[str, float], exposures: dict[str, float] | None, message: str
) -> None:
    with pytest.raises(StatsInputError, match=message):
        trend_counts(counts, exposures, "control")


def test_check_count_returns_a_float() -> None:
    assert check_count(np.int32(3), "x") == 3.0
    assert isinstance(check_count(3, "x"), float)
