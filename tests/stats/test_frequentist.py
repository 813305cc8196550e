"""Conventions shared by the frequentist tests: quantiles, tails, relative intervals.

The helpers use `scipy.special` for speed; here they are checked against `scipy.stats`
and against the closed forms they implement, and the three tests are checked to share
the sign convention (treatment − control) and the result shape.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from scipy import stats

import exp_pipeline.stats as stats_package
from exp_pipeline.errors import ExpPipelineError
from exp_pipeline.stats.frequentist import (
    CONFIDENCE_LEVEL,
    RELATIVE_LINEAR_DELTA,
    RELATIVE_LOG_DELTA,
    FrequentistResult,
    check_level,
    linear_relative_interval,
    log_relative_interval,
    normal_critical,
    normal_p_value,
    student_critical,
    student_p_value,
    wald_interval,
)
from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.means import MeanSummary, welch_t_test
from exp_pipeline.stats.proportions import two_proportion_z_test
from exp_pipeline.stats.ratios import RatioSummary, ratio_z_test


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95, 0.99, 0.999])
def test_critical_values_match_scipy_stats(level: float) -> None:
    tail = 1 - (1 - level) / 2
    assert normal_critical(level) == pytest.approx(stats.norm.ppf(tail), rel=1e-12)
    for df in (1.0, 2.5, 17.3, 1000.0):
        assert student_critical(level, df) == pytest.approx(stats.t.ppf(tail, df), rel=1e-10)
    assert normal_critical(0.95) == pytest.approx(1.959963984540054, rel=1e-14)


@pytest.mark.parametrize("statistic", [-4.2, -1.96, -0.3, 0.0, 0.7, 2.5, 6.0])
def test_two_sided_p_values_match_scipy_stats(statistic: float) -> None:
    assert normal_p_value(statistic) == pytest.approx(2 * stats.norm.sf(abs(statistic)), rel=1e-12)
    for df in (1.0, 3.7, 30.0, 5000.0):
        assert student_p_value(statistic, df) == pytest.approx(
            2 * stats.t.sf(abs(statistic), df), rel=1e-10
        )


def test_undefined_statistics_and_degrees_of_freedom_give_nan() -> None:
    assert math.isnan(normal_p_value(math.nan))
    assert math.isnan(student_p_value(1.0, math.nan))
    assert math.isnan(student_critical(0.95, math.nan))
    assert all(map(math.isnan, wald_interval(1.0, 0.0, 1.96)))
    assert all(map(math.isnan, wald_interval(1.0, math.nan, 1.96)))
    assert wald_interval(1.0, 0.5, 2.0) == (0.0, 2.0)


def test_log_relative_interval_is_the_exponentiated_log_scale_interval() -> None:
    control, treatment, var_c, var_t = 0.10, 0.13, 9e-5, 1.131e-4
    se = math.sqrt(var_t / treatment**2 + var_c / control**2)
    centre = math.log(treatment / control)
    low, high = log_relative_interval(control, treatment, var_c, var_t, 1.96)
    assert low == pytest.approx(math.exp(centre - 1.96 * se) - 1, rel=1e-12)
    assert high == pytest.approx(math.exp(centre + 1.96 * se) - 1, rel=1e-12)
    # Asymmetric around the point estimate 0.3, wider above than below.
    assert high - 0.3 > 0.3 - low
    assert all(map(math.isnan, log_relative_interval(0.0, 0.1, 0.0, 1e-4, 1.96)))
    assert all(map(math.isnan, log_relative_interval(0.1, 0.0, 1e-4, 0.0, 1.96)))


def test_linear_relative_interval_is_the_delta_method_on_the_ratio() -> None:
    control, treatment, var_c, var_t = -2.0, -2.5, 0.04, 0.09
    se = math.sqrt(var_t / control**2 + treatment**2 * var_c / control**4)
    low, high = linear_relative_interval(control, treatment, var_c, var_t, 1.96)
    assert (low + high) / 2 == pytest.approx(treatment / control - 1, rel=1e-12)
    assert high - low == pytest.approx(2 * 1.96 * se, rel=1e-12)
    assert all(map(math.isnan, linear_relative_interval(0.0, 1.0, 0.1, 0.1, 1.96)))


@pytest.mark.parametrize("level", [0, 1, -0.5, 1.5, math.nan, True, "0.95", None])
def test_confidence_level_outside_zero_one_is_refused(level: object) -> None:
    with pytest.raises(StatsInputError, match="confidence level"):
        check_level(level)
    with pytest.raises(StatsInputError, match="confidence level"):
        two_proportion_z_test(10, 100, 12, 100, level=level)  # type: ignore[arg-type]


def _all_three(swap: bool) -> list[FrequentistResult]:
    proportions = [(120, 1000), (150, 1000)]
    means = [MeanSummary(200, 10.0, 9.0), MeanSummary(220, 11.0, 16.0)]
    ratios = [
        RatioSummary(300, 900.0, 600.0, 4000.0, 1500.0, 2300.0),
        RatioSummary(310, 1000.0, 610.0, 4600.0, 1530.0, 2600.0),
    ]
    if swap:
        proportions, means, ratios = proportions[::-1], means[::-1], ratios[::-1]
    return [
        two_proportion_z_test(*proportions[0], *proportions[1]),
        welch_t_test(*means),
        ratio_z_test(*ratios),
    ]


def test_every_test_reports_treatment_minus_control_and_flips_sign_when_swapped() -> None:
    for result, swapped in zip(_all_three(False), _all_three(True), strict=True):
        assert result.effect == pytest.approx(result.treatment_value - result.control_value)
        assert result.effect > 0 and result.statistic > 0
        assert swapped.effect == pytest.approx(-result.effect, rel=1e-12)
        assert swapped.statistic == pytest.approx(-result.statistic, rel=1e-12)
        assert swapped.p_value == pytest.approx(result.p_value, rel=1e-12)
        assert (swapped.ci_low, swapped.ci_high) == pytest.approx(
            (-result.ci_high, -result.ci_low), rel=1e-12
        )
        assert result.relative_effect == pytest.approx(
            result.treatment_value / result.control_value - 1, rel=1e-12
        )
        assert result.ci_low < result.effect < result.ci_high
        assert result.relative_ci_low < result.relative_effect < result.relative_ci_high
        assert result.level == CONFIDENCE_LEVEL
    proportion, welch, ratio = _all_three(False)
    assert (proportion.method, proportion.relative_method, proportion.df) == (
        "two_proportion_z",
        RELATIVE_LOG_DELTA,
        None,
    )
    assert (welch.method, welch.relative_method) == ("welch_t", RELATIVE_LINEAR_DELTA)
    assert welch.df is not None and welch.df > 0
    assert (ratio.method, ratio.relative_method, ratio.df) == (
        "delta_method_ratio_z",
        RELATIVE_LINEAR_DELTA,
        None,
    )


def test_results_are_frozen_and_errors_are_user_facing() -> None:
    result = two_proportion_z_test(10, 100, 12, 100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.p_value = 0.0  # type: ignore[misc]
    assert issubclass(StatsInputError, ExpPipelineError)
    assert issubclass(StatsInputError, ValueError)


def test_a_narrower_level_gives_a_narrower_interval_and_the_same_p_value() -> None:
    wide = welch_t_test(MeanSummary(50, 1.0, 4.0), MeanSummary(60, 1.8, 5.0), level=0.99)
    narrow = welch_t_test(MeanSummary(50, 1.0, 4.0), MeanSummary(60, 1.8, 5.0), level=0.9)
    assert narrow.ci_low > wide.ci_low and narrow.ci_high < wide.ci_high
    assert narrow.p_value == wide.p_value
    assert narrow.level == 0.9


def test_the_package_exports_the_frequentist_api() -> None:
    for name in (
        "CONFIDENCE_LEVEL",
        "FrequentistResult",
        "MeanSummary",
        "RatioSummary",
        "Winsorised",
        "cap_values",
        "holm_adjust",
        "ratio_estimate",
        "ratio_z_test",
        "two_proportion_z_test",
        "welch_t_test",
        "winsorise",
    ):
        assert name in stats_package.__all__
        assert hasattr(stats_package, name)
