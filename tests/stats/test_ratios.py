"""Delta-method ratio metrics against closed forms, simulation and the bootstrap.

The subjects are simulated as sessions and clicks with per-subject heterogeneity, so
numerator and denominator are correlated within a subject (the case the delta method
exists for). Tolerances, stated with each test: the relative Monte Carlo error of a
variance estimated from B independent replicates is about sqrt(2 / B), 2.2% for B = 4000
and 3.2% for 2000 bootstrap resamples; the bounds below are about 3.5 of those.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.ratios import RatioSummary, ratio_estimate, ratio_z_test

SIMULATIONS = 4000
COVERAGE_TOLERANCE = 0.012


def _subjects(
    rng: np.random.Generator, shape: tuple[int, ...]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Clicks (x) and sessions (y ≥ 1) per subject; heavy users click more per session."""
    activity = rng.gamma(2.0, 1.5, shape)
    sessions = 1 + rng.poisson(activity)
    click_rate = np.clip(0.1 + 0.05 * activity, 0, 0.9)
    clicks = rng.binomial(sessions, click_rate)
    return clicks.astype(np.float64), sessions.astype(np.float64)


def _summaries(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> list[RatioSummary]:
    """One summary per row of (experiments × subjects) arrays, vectorised."""
    sums = [x.sum(1), y.sum(1), (x * x).sum(1), (y * y).sum(1), (x * y).sum(1)]
    return [RatioSummary(x.shape[1], *map(float, row)) for row in zip(*sums, strict=True)]


def test_variance_matches_the_textbook_delta_method_formula() -> None:
    x, y = _subjects(np.random.default_rng(7), (500,))
    ratio, variance = ratio_estimate(RatioSummary.from_values(x, y))
    n = x.size
    cov = np.cov(x, y, ddof=1)
    r = x.sum() / y.sum()
    expected = (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (n * y.mean() ** 2)
    assert ratio == pytest.approx(r, rel=1e-12)
    assert variance == pytest.approx(expected, rel=1e-10)


def test_constant_denominators_reduce_to_the_exact_variance_of_a_mean() -> None:
    rng = np.random.default_rng(7)
    x = rng.exponential(4.0, 250)
    y = np.full(250, 3.0)
    ratio, variance = ratio_estimate(RatioSummary.from_values(x, y))
    assert ratio == pytest.approx(x.mean() / 3.0, rel=1e-12)
    assert variance == pytest.approx(x.var(ddof=1) / (250 * 9.0), rel=1e-10)
    # So the z statistic is Welch's t statistic of x / 3 between two such variants.
    x_t = rng.exponential(4.4, 300)
    result = ratio_z_test(
        RatioSummary.from_values(x, y), RatioSummary.from_values(x_t, np.full(300, 3.0))
    )
    welch = stats.ttest_ind(x_t / 3, x / 3, equal_var=False)
    assert result.statistic == pytest.approx(welch.statistic, rel=1e-10)


def test_delta_variance_matches_the_spread_of_ratios_over_simulated_experiments() -> None:
    # Tolerance 8%: 3.6 × the 2.2% Monte Carlo error of a variance from 4000 replicates.
    x, y = _subjects(np.random.default_rng(7), (SIMULATIONS, 300))
    summaries = _summaries(x, y)
    estimates = np.array([ratio_estimate(s) for s in summaries])
    empirical = estimates[:, 0].var(ddof=1)
    assert estimates[:, 1].mean() == pytest.approx(empirical, rel=0.08)


def test_delta_variance_matches_a_seeded_bootstrap_of_one_sample() -> None:
    # Tolerance 10%: about 3 × the 3.2% Monte Carlo error of 2000 bootstrap resamples.
    rng = np.random.default_rng(7)
    x, y = _subjects(rng, (2000,))
    _, variance = ratio_estimate(RatioSummary.from_values(x, y))
    weights = rng.multinomial(x.size, np.full(x.size, 1 / x.size), size=2000)
    bootstrap = (weights @ x) / (weights @ y)
    assert variance == pytest.approx(bootstrap.var(ddof=1), rel=0.10)


def test_a_a_experiments_cover_zero_95_percent_and_reject_5_percent() -> None:
    rng = np.random.default_rng(7)
    controls = _summaries(*_subjects(rng, (SIMULATIONS, 300)))
    treatments = _summaries(*_subjects(rng, (SIMULATIONS, 260)))
    results = [ratio_z_test(c, t) for c, t in zip(controls, treatments, strict=True)]
    covered = np.mean([r.ci_low <= 0 <= r.ci_high for r in results])
    rejected = np.mean([r.p_value < 0.05 for r in results])
    relative = np.mean([r.relative_ci_low <= 0 <= r.relative_ci_high for r in results])
    assert abs(covered - 0.95) <= COVERAGE_TOLERANCE, covered
    assert abs(rejected - 0.05) <= COVERAGE_TOLERANCE, rejected
    assert abs(relative - 0.95) <= COVERAGE_TOLERANCE, relative


def test_result_combines_the_two_variances() -> None:
    rng = np.random.default_rng(11)
    control = RatioSummary.from_values(*_subjects(rng, (400,)))
    treatment = RatioSummary.from_values(*_subjects(rng, (380,)))
    result = ratio_z_test(control, treatment)
    r_c, v_c = ratio_estimate(control)
    r_t, v_t = ratio_estimate(treatment)
    se = math.sqrt(v_c + v_t)
    z = stats.norm.ppf(0.975)
    assert result.standard_error == pytest.approx(se, rel=1e-12)
    assert result.statistic == pytest.approx((r_t - r_c) / se, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(r_t - r_c) / se), rel=1e-10)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (r_t - r_c - z * se, r_t - r_c + z * se), rel=1e-10
    )
    relative_se = math.sqrt(v_t / r_c**2 + r_t**2 * v_c / r_c**4)
    assert result.relative_ci_high - result.relative_ci_low == pytest.approx(
        2 * z * relative_se, rel=1e-10
    )


def test_from_values_computes_the_sufficient_statistics() -> None:
    summary = RatioSummary.from_values([1.0, 0.0, 3.0], [2.0, 1.0, 4.0])
    assert summary == RatioSummary(3, 4.0, 7.0, 10.0, 21.0, 14.0)


def test_ratios_that_never_vary_give_an_undefined_test() -> None:
    # x = 2y for every subject: each ratio is exactly 2, with zero delta-method variance.
    control = RatioSummary.from_values([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert ratio_estimate(control) == (2.0, 0.0)
    result = ratio_z_test(control, control)
    assert result.effect == 0 and result.relative_effect == 0
    assert math.isnan(result.statistic) and math.isnan(result.p_value)
    assert math.isnan(result.ci_low) and math.isnan(result.relative_ci_low)


GOOD = {"n": 3, "sum_x": 4.0, "sum_y": 7.0, "sum_x2": 10.0, "sum_y2": 21.0, "sum_xy": 14.0}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sum_y": 0.0}, "denominator total sum_y must be positive"),
        ({"sum_y": -7.0}, "denominator total sum_y must be positive"),
        ({"n": 1}, "n must be at least 2"),
        ({"n": -3}, "n must be a finite non-negative"),
        ({"sum_x": math.nan}, "sum_x must be finite"),
        ({"sum_xy": math.inf}, "sum_xy must be finite"),
        ({"sum_x2": -1.0}, "sums of squares must be non-negative"),
        ({"sum_x2": 5.0}, "inconsistent: a sum of squares is below"),
        ({"sum_xy": 15.0}, "inconsistent: sum_xy"),
        ({"sum_y": True}, "must be a number"),
    ],
)
def test_impossible_sums_are_refused(changes: dict[str, object], message: str) -> None:
    summary = RatioSummary(**{**GOOD, **changes})  # type: ignore[arg-type]
    with pytest.raises(StatsInputError, match=f"control {message}|control .*{message}"):
        ratio_z_test(summary, RatioSummary(**GOOD))  # type: ignore[arg-type]


def test_from_values_refuses_mismatched_or_missing_values() -> None:
    with pytest.raises(StatsInputError, match="equal length"):
        RatioSummary.from_values([1.0, 2.0], [1.0])
    with pytest.raises(StatsInputError, match="finite"):
        RatioSummary.from_values([1.0, math.nan], [1.0, 1.0])
    with pytest.raises(StatsInputError, match="must be a RatioSummary"):
        ratio_estimate((3, 4.0, 7.0, 10.0, 21.0, 14.0), "control")  # type: ignore[arg-type]
