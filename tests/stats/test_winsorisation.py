"""Winsorisation: caps from numpy's percentile, applied the same way to every variant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.means import MeanSummary
from exp_pipeline.stats.winsorisation import (
    DEFAULT_WINSORISATION_PERCENTILE,
    cap_values,
    winsorise,
)


def test_hand_computed_cap_of_one_to_a_hundred() -> None:
    # Linear interpolation: position 0.99 × 99 = 98.01 between 99 and 100 → 99.01.
    values = np.arange(1.0, 101.0)
    result = winsorise(values, 99)
    assert result.cap == pytest.approx(99.01, rel=1e-12)
    assert result.capped == 1
    assert result.values[-1] == pytest.approx(99.01)
    np.testing.assert_array_equal(result.values[:-1], values[:-1])
    assert DEFAULT_WINSORISATION_PERCENTILE == 99.0


def test_cap_is_numpy_percentile_and_order_is_kept() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(3.0, 1.5, 5000)
    result = winsorise(values.tolist(), 95.0)
    cap = np.percentile(values, 95.0)
    assert result.cap == pytest.approx(cap, rel=1e-12)
    np.testing.assert_array_equal(result.values, np.minimum(values, cap))
    assert result.capped == int((values > cap).sum())
    assert result.values.max() == pytest.approx(cap)
    # The point of capping: a heavy tail's variance shrinks a lot, the mean a little.
    before, after = MeanSummary.from_values(values), MeanSummary.from_values(result.values)
    assert after.variance < 0.25 * before.variance
    assert after.mean > 0.6 * before.mean


def test_percentile_100_changes_nothing_and_input_is_not_modified() -> None:
    values = np.array([5.0, -2.0, 9.0, 0.0])
    result = winsorise(values, 100)
    np.testing.assert_array_equal(result.values, values)
    assert (result.cap, result.capped) == (9.0, 0)
    winsorise(values, 50)
    np.testing.assert_array_equal(values, [5.0, -2.0, 9.0, 0.0])


def test_a_pooled_cap_is_applied_identically_to_each_variant() -> None:
    control, treatment = np.array([1.0, 2.0, 50.0]), np.array([3.0, 4.0, 80.0])
    pooled = winsorise(np.concatenate([control, treatment]), 80)
    np.testing.assert_array_equal(cap_values(control, pooled.cap), np.minimum(control, pooled.cap))
    np.testing.assert_array_equal(cap_values(treatment, pooled.cap), [3.0, 4.0, pooled.cap])


@pytest.mark.parametrize(
    ("values", "percentile", "message"),
    [
        ([], 99, "at least one value"),
        ([1.0, math.nan], 99, "finite"),
        ([[1.0, 2.0]], 99, "one-dimensional"),
        ([1.0, 2.0], 0, r"percentile must be in \(0, 100\]"),
        ([1.0, 2.0], 100.5, r"percentile must be in \(0, 100\]"),
        ([1.0, 2.0], math.nan, r"percentile must be in \(0, 100\]"),
        ([1.0, 2.0], True, "percentile must be a number"),
    ],
)
def test_bad_inputs_are_refused(values: object, percentile: object, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        winsorise(values, percentile)  # type: ignore[arg-type]


def test_cap_values_refuses_a_missing_cap() -> None:
    with pytest.raises(StatsInputError, match="cap must be a number"):
        cap_values([1.0], math.nan)
    with pytest.raises(StatsInputError, match="finite"):
        cap_values([math.inf], 3.0)
