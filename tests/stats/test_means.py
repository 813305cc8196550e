"""Welch t-test from summaries against scipy and seeded simulations.

`scipy.stats.ttest_ind_from_stats(equal_var=False)` checks t and p from the same
summaries; `scipy.stats.ttest_ind(equal_var=False)` on raw data checks the
Welch–Satterthwaite df and the interval of the difference. Simulation tolerance: ±1.2
points on 4000 experiments, about 3.5 Monte Carlo standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.means import MeanSummary, welch_degrees_of_freedom, welch_t_test

SIMULATIONS = 4000
COVERAGE_TOLERANCE = 0.012


def _summaries(values: npt.NDArray[np.float64]) -> list[MeanSummary]:
    """One summary per row, computed with numpy independently of `from_values`."""
    n = values.shape[1]
    means, variances = values.mean(axis=1), values.var(axis=1, ddof=1)
    return [MeanSummary(n, m, v) for m, v in zip(means, variances, strict=True)]


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        (MeanSummary(50, 10.0, 4.0), MeanSummary(60, 11.2, 9.0)),
        (MeanSummary(12, -3.0, 0.5), MeanSummary(5, -2.1, 6.0)),
        (MeanSummary(2, 1.0, 1.0), MeanSummary(2, 1.5, 0.25)),
        (MeanSummary(10_000, 42.0, 900.0), MeanSummary(9_800, 42.9, 1100.0)),
    ],
)
def test_t_and_p_match_scipy_ttest_ind_from_stats(
    control: MeanSummary, treatment: MeanSummary
) -> None:
    result = welch_t_test(control, treatment)
    expected = stats.ttest_ind_from_stats(
        treatment.mean,
        math.sqrt(treatment.variance),
        treatment.n,
        control.mean,
        math.sqrt(control.variance),
        control.n,
        equal_var=False,
    )
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.effect == pytest.approx(treatment.mean - control.mean, rel=1e-12)


def test_df_and_interval_match_scipy_ttest_ind_on_raw_data() -> None:
    rng = np.random.default_rng(7)
    control = rng.normal(10, 2, 37)
    treatment = rng.lognormal(2.4, 0.5, 23)
    result = welch_t_test(MeanSummary.from_values(control), MeanSummary.from_values(treatment))
    expected = stats.ttest_ind(treatment, control, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert result.df == pytest.approx(expected.df, rel=1e-10)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.ci_low == pytest.approx(interval.low, rel=1e-9)
    assert result.ci_high == pytest.approx(interval.high, rel=1e-9)
    assert result.df < len(control) + len(treatment) - 2


def test_relative_interval_is_the_delta_method_with_the_welch_quantile() -> None:
    control, treatment = MeanSummary(40, 8.0, 16.0), MeanSummary(45, 9.0, 25.0)
    result = welch_t_test(control, treatment)
    var_c, var_t = 16.0 / 40, 25.0 / 45
    se = math.sqrt(var_t / 8.0**2 + 9.0**2 * var_c / 8.0**4)
    critical = stats.t.ppf(0.975, result.df)
    assert result.relative_effect == pytest.approx(9.0 / 8.0 - 1, rel=1e-12)
    assert result.relative_ci_low == pytest.approx(0.125 - critical * se, rel=1e-10)
    assert result.relative_ci_high == pytest.approx(0.125 + critical * se, rel=1e-10)


def test_from_values_is_n_mean_and_the_ddof_1_variance() -> None:
    values = [3.0, 5.0, 10.0, 2.0]
    summary = MeanSummary.from_values(values)
    assert summary == MeanSummary(4, 5.0, (4 + 0 + 25 + 9) / 3)


def test_a_a_experiments_with_unequal_sizes_and_spreads_keep_their_nominal_rates() -> None:
    # Small, unbalanced samples with a threefold difference in standard deviation: the
    # case where Student's pooled test is badly off and Welch's is not.
    rng = np.random.default_rng(7)
    controls = _summaries(rng.normal(5.0, 3.0, (SIMULATIONS, 12)))
    treatments = _summaries(rng.normal(5.0, 1.0, (SIMULATIONS, 40)))
    results = [welch_t_test(c, t) for c, t in zip(controls, treatments, strict=True)]
    covered = np.mean([r.ci_low <= 0 <= r.ci_high for r in results])
    rejected = np.mean([r.p_value < 0.05 for r in results])
    assert abs(covered - 0.95) <= COVERAGE_TOLERANCE, covered
    assert abs(rejected - 0.05) <= COVERAGE_TOLERANCE, rejected
    pooled = stats.ttest_ind_from_stats(
        np.array([t.mean for t in treatments]),
        np.sqrt([t.variance for t in treatments]),
        40,
        np.array([c.mean for c in controls]),
        np.sqrt([c.variance for c in controls]),
        12,
        equal_var=True,
    )
    assert np.mean(pooled.pvalue < 0.05) > 0.12  # Student's test: well above 5%


def test_relative_interval_covers_a_known_true_lift_on_skewed_data() -> None:
    rng = np.random.default_rng(7)
    controls = _summaries(rng.exponential(10.0, (SIMULATIONS, 400)))
    treatments = _summaries(rng.exponential(11.0, (SIMULATIONS, 400)))
    results = [welch_t_test(c, t) for c, t in zip(controls, treatments, strict=True)]
    relative = np.mean([r.relative_ci_low <= 0.1 <= r.relative_ci_high for r in results])
    absolute = np.mean([r.ci_low <= 1.0 <= r.ci_high for r in results])
    assert abs(relative - 0.95) <= COVERAGE_TOLERANCE, relative
    assert abs(absolute - 0.95) <= COVERAGE_TOLERANCE, absolute


def test_one_zero_variance_leaves_the_other_variants_degrees_of_freedom() -> None:
    assert welch_degrees_of_freedom(10, 0.0, 25, 4.0) == pytest.approx(24.0, rel=1e-12)
    result = welch_t_test(MeanSummary(10, 1.0, 0.0), MeanSummary(25, 2.0, 4.0))
    assert result.df == pytest.approx(24.0, rel=1e-12)
    assert result.statistic == pytest.approx(1.0 / math.sqrt(4.0 / 25), rel=1e-12)


def test_two_zero_variances_give_an_undefined_test() -> None:
    result = welch_t_test(MeanSummary(10, 1.0, 0.0), MeanSummary(10, 2.0, 0.0))
    assert result.effect == 1.0
    assert all(
        math.isnan(x)
        for x in (result.statistic, result.p_value, result.ci_low, result.ci_high, result.df)
    )


def test_a_zero_control_mean_leaves_the_relative_lift_undefined() -> None:
    result = welch_t_test(MeanSummary(10, 0.0, 1.0), MeanSummary(10, 0.5, 1.0))
    assert math.isnan(result.relative_effect) and math.isnan(result.relative_ci_low)
    assert not math.isnan(result.p_value)


@pytest.mark.parametrize(
    ("control", "message"),
    [
        (MeanSummary(1, 1.0, 0.0), "control n must be at least 2 to estimate a variance"),
        (MeanSummary(0, 1.0, 0.0), "control n must be at least 2"),
        (MeanSummary(-5, 1.0, 1.0), "control n must be a finite non-negative"),
        (MeanSummary(10, math.nan, 1.0), "control mean must be finite"),
        (MeanSummary(10, 1.0, math.nan), "control variance must be finite"),
        (MeanSummary(10, 1.0, -0.1), "control variance must be non-negative"),
        (MeanSummary(10, "1", 1.0), "control mean must be a number"),  # type: ignore[arg-type]
        ((10, 1.0, 1.0), "control must be a MeanSummary"),
    ],
)
def test_impossible_summaries_are_refused(control: object, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        welch_t_test(control, MeanSummary(10, 1.0, 1.0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "message"),
    [([1.0], "at least 2 values"), ([1.0, math.nan], "finite"), ([[1.0, 2.0]], "one-dim")],
)
def test_from_values_refuses_what_has_no_variance(values: object, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        MeanSummary.from_values(values)  # type: ignore[arg-type]
