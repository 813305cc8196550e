"""Two-proportion z-test against statsmodels-style closed forms and seeded simulations.

statsmodels is not a dependency, so its formulas are written out here from their
definitions: `proportions_ztest` (pooled variance), `confint_proportions_2indep` with
method "wald" (difference) and "log" (Katz's ratio interval, var = 1/x₁ − 1/n₁ + 1/x₂ −
1/n₂). The square of z is also checked against scipy's 2×2 chi-square without continuity
correction, an independent implementation of the same test.

Simulation tolerances: with 4000 experiments the Monte Carlo standard error of a 95%
coverage is sqrt(0.95 × 0.05 / 4000) = 0.34 points, so ±1.2 points is about 3.5 standard
errors (the seeds are fixed, so the tests are deterministic anyway).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.proportions import two_proportion_z_test

SIMULATIONS = 4000
COVERAGE_TOLERANCE = 0.012

CASES = [(100, 1000, 130, 1000), (37, 512, 29, 488), (5, 60, 14, 75), (980, 1000, 990, 1000)]


def _statsmodels_proportions_ztest(x_c: int, n_c: int, x_t: int, n_t: int) -> tuple[float, float]:
    """statsmodels.stats.proportion.proportions_ztest([x_t, x_c], [n_t, n_c]), two-sided."""
    p_pool = (x_t + x_c) / (n_t + n_c)
    variance = p_pool * (1 - p_pool) * (1 / n_t + 1 / n_c)
    z = (x_t / n_t - x_c / n_c) / math.sqrt(variance)
    return z, 2 * stats.norm.sf(abs(z))


@pytest.mark.parametrize(("x_c", "n_c", "x_t", "n_t"), CASES)
def test_statistic_and_p_value_match_the_pooled_z_test(
    x_c: int, n_c: int, x_t: int, n_t: int
) -> None:
    result = two_proportion_z_test(x_c, n_c, x_t, n_t)
    z, p = _statsmodels_proportions_ztest(x_c, n_c, x_t, n_t)
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-10)
    chi2, chi2_p, _, _ = stats.chi2_contingency(
        [[x_c, n_c - x_c], [x_t, n_t - x_t]], correction=False
    )
    assert result.statistic**2 == pytest.approx(chi2, rel=1e-10)
    assert result.p_value == pytest.approx(chi2_p, rel=1e-8)


@pytest.mark.parametrize(("x_c", "n_c", "x_t", "n_t"), CASES)
def test_intervals_match_the_wald_and_katz_log_closed_forms(
    x_c: int, n_c: int, x_t: int, n_t: int
) -> None:
    result = two_proportion_z_test(x_c, n_c, x_t, n_t)
    p_c, p_t = x_c / n_c, x_t / n_t
    z = stats.norm.ppf(0.975)
    se = math.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
    assert result.effect == pytest.approx(p_t - p_c, rel=1e-12)
    assert result.standard_error == pytest.approx(se, rel=1e-12)
    assert result.ci_low == pytest.approx(p_t - p_c - z * se, rel=1e-10, abs=1e-14)
    assert result.ci_high == pytest.approx(p_t - p_c + z * se, rel=1e-10, abs=1e-14)
    # statsmodels confint_proportions_2indep(compare="ratio", method="log"), minus 1.
    log_se = math.sqrt(1 / x_t - 1 / n_t + 1 / x_c - 1 / n_c)
    log_ratio = math.log(p_t / p_c)
    assert result.relative_effect == pytest.approx(p_t / p_c - 1, rel=1e-12)
    assert result.relative_ci_low == pytest.approx(math.exp(log_ratio - z * log_se) - 1, rel=1e-10)
    assert result.relative_ci_high == pytest.approx(math.exp(log_ratio + z * log_se) - 1, rel=1e-10)
    assert result.relative_ci_low > -1
    assert result.control_value == p_c and result.treatment_value == p_t


def test_hand_computed_example() -> None:
    # 10% vs 13% of 1000: pooled 0.115, SE0 = sqrt(0.115 × 0.885 × 0.002) = 0.0142671;
    # z = 0.03 / 0.0142671 = 2.1027; p = 0.0355.
    result = two_proportion_z_test(100, 1000, 130, 1000)
    assert result.statistic == pytest.approx(2.10274, abs=1e-5)
    assert result.p_value == pytest.approx(0.035488, abs=1e-6)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.002068, 0.057932), abs=1e-6)


def test_a_a_experiments_cover_zero_95_percent_and_reject_5_percent() -> None:
    rng = np.random.default_rng(7)
    n_c, n_t, rate = 1200, 800, 0.1
    x_c = rng.binomial(n_c, rate, SIMULATIONS)
    x_t = rng.binomial(n_t, rate, SIMULATIONS)
    results = [two_proportion_z_test(c, n_c, t, n_t) for c, t in zip(x_c, x_t, strict=True)]
    covered = np.mean([r.ci_low <= 0 <= r.ci_high for r in results])
    rejected = np.mean([r.p_value < 0.05 for r in results])
    assert abs(covered - 0.95) <= COVERAGE_TOLERANCE, covered
    assert abs(rejected - 0.05) <= COVERAGE_TOLERANCE, rejected


def test_relative_interval_covers_a_known_true_lift_95_percent() -> None:
    rng = np.random.default_rng(7)
    n, p_c, p_t = 3000, 0.10, 0.12
    true_lift = p_t / p_c - 1
    x_c = rng.binomial(n, p_c, SIMULATIONS)
    x_t = rng.binomial(n, p_t, SIMULATIONS)
    results = [two_proportion_z_test(c, n, t, n) for c, t in zip(x_c, x_t, strict=True)]
    relative = np.mean([r.relative_ci_low <= true_lift <= r.relative_ci_high for r in results])
    absolute = np.mean([r.ci_low <= p_t - p_c <= r.ci_high for r in results])
    assert abs(relative - 0.95) <= COVERAGE_TOLERANCE, relative
    assert abs(absolute - 0.95) <= COVERAGE_TOLERANCE, absolute
    # The log-scale interval misses on both sides about equally (2.5% each).
    below = np.mean([true_lift < r.relative_ci_low for r in results])
    assert abs(below - 0.025) <= 0.01, below


def test_no_variation_at_all_gives_nan_statistic_and_intervals() -> None:
    for x in (0, 50):
        result = two_proportion_z_test(x, 50, x, 50)
        assert result.effect == 0
        assert math.isnan(result.statistic) and math.isnan(result.p_value)
        assert math.isnan(result.ci_low) and math.isnan(result.ci_high)


def test_zero_conversions_leave_the_relative_lift_undefined_but_the_test_defined() -> None:
    no_control = two_proportion_z_test(0, 100, 5, 100)
    assert math.isnan(no_control.relative_effect)
    assert math.isnan(no_control.relative_ci_low) and math.isnan(no_control.relative_ci_high)
    assert no_control.p_value == pytest.approx(_statsmodels_proportions_ztest(0, 100, 5, 100)[1])
    no_treatment = two_proportion_z_test(5, 100, 0, 100)
    assert no_treatment.relative_effect == -1
    assert math.isnan(no_treatment.relative_ci_low)
    assert no_treatment.ci_high < 0 < no_treatment.p_value < 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((11, 10, 5, 10), "control conversions .* exceed its subjects"),
        ((5, 10, 11, 10), "treatment conversions .* exceed"),
        ((-1, 10, 5, 10), "control conversions must be a finite non-negative"),
        ((5, -10, 5, 10), "control subjects must be a finite non-negative"),
        ((0, 0, 5, 10), "control subjects must be at least 1"),
        ((math.nan, 10, 5, 10), "control conversions"),
        ((5, 10, 5, math.inf), "treatment subjects"),
        ((True, 10, 5, 10), "must be a number"),
        (("5", 10, 5, 10), "must be a number"),
    ],
)
def test_impossible_counts_are_refused(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        two_proportion_z_test(*args)  # type: ignore[arg-type]
