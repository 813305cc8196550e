"""The dispersion test of count metrics and the widened Gamma posterior.

Independent computations: the Pearson statistic summed over raw per-subject counts with
numpy, its p-value from `scipy.stats.chi2`, and the negative-binomial dispersion
1 + μ / r in closed form. Seeded simulations, tolerances stated with each test: the
test's false alarms on Poisson data, and the coverage of the trend posterior's 95%
interval on clumpy (negative-binomial) counts, which the widening has to restore.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_pipeline.stats.inputs import StatsInputError, TrendCounts
from exp_pipeline.stats.intervals import credible_interval
from exp_pipeline.stats.means import MeanSummary
from exp_pipeline.stats.overdispersion import (
    OVERDISPERSION_ALPHA,
    dispersion_test,
    widened,
)
from exp_pipeline.stats.posteriors import GammaPosterior, trend_posteriors

SIMULATIONS = 1000


def _summary(counts: np.ndarray) -> MeanSummary:
    return MeanSummary.from_sums(counts.size, float(counts.sum()), float(counts @ counts))


def _negative_binomial(rng: np.random.Generator, mean: float, r: float, n: int) -> np.ndarray:
    """Counts with mean `mean` and variance mean + mean² / r (Gamma-mixed Poisson)."""
    return rng.poisson(rng.gamma(r, mean / r, n)).astype(np.float64)


def test_statistic_and_p_value_match_the_raw_pearson_sum() -> None:
    rng = np.random.default_rng(1)
    counts = {"control": _negative_binomial(rng, 2.0, 3.0, 400), "test": rng.poisson(2.3, 380)}
    result = dispersion_test({k: _summary(v.astype(np.float64)) for k, v in counts.items()})
    pearson = sum(((v - v.mean()) ** 2).sum() / v.mean() for v in counts.values())
    assert result.statistic == pytest.approx(pearson, rel=1e-9)
    assert result.df == 400 + 380 - 2
    assert result.phi == pytest.approx(pearson / 778, rel=1e-9)
    assert result.p_value == pytest.approx(stats.chi2.sf(pearson, 778), rel=1e-9)


def test_poisson_counts_are_rarely_called_overdispersed() -> None:
    # False alarms at most alpha = 1% plus three binomial standard errors (0.9 points).
    rng = np.random.default_rng(2)
    alarms = sum(
        dispersion_test(
            {"control": _summary(rng.poisson(1.5, 300)), "test": _summary(rng.poisson(1.7, 300))}
        ).overdispersed
        for _ in range(SIMULATIONS)
    )
    limit = OVERDISPERSION_ALPHA + 3 * math.sqrt(OVERDISPERSION_ALPHA / SIMULATIONS)
    assert alarms / SIMULATIONS <= limit


def test_clumpy_counts_are_detected_with_the_negative_binomial_dispersion() -> None:
    rng = np.random.default_rng(3)
    mean, r = 4.0, 2.0
    counts = {k: _summary(_negative_binomial(rng, mean, r, 20_000)) for k in ("control", "t")}
    result = dispersion_test(counts)
    assert result.overdispersed and result.widening == result.phi
    # φ = Var / mean = 1 + mean / r = 3; the estimate is within 5% at 40 000 subjects.
    assert result.phi == pytest.approx(1 + mean / r, rel=0.05)


def test_widening_restores_the_coverage_of_the_trend_posterior() -> None:
    # 95% intervals of the control total must cover its true mean 95% ± 2.1 points (three
    # binomial standard errors over 1000 runs) once widened; unwidened they cover far less.
    rng = np.random.default_rng(4)
    n, mean, r = 500, 3.0, 1.5
    plain = wide = 0
    for _ in range(SIMULATIONS):
        control, test = _negative_binomial(rng, mean, r, n), _negative_binomial(rng, mean, r, n)
        dispersion = dispersion_test({"control": _summary(control), "test": _summary(test)})
        totals = {
            "control": TrendCounts(control.sum(), n),
            "test": TrendCounts(test.sum(), n),
        }
        posterior = trend_posteriors(totals, "control")["control"]
        low, high = credible_interval(posterior)
        plain += low <= n * mean <= high
        low, high = credible_interval(widened(posterior, dispersion.widening))
        wide += low <= n * mean <= high
    tolerance = 3 * math.sqrt(0.05 * 0.95 / SIMULATIONS)
    assert wide / SIMULATIONS == pytest.approx(0.95, abs=tolerance)
    assert plain / SIMULATIONS < 0.8


def test_widened_keeps_the_mean_and_scales_the_variance() -> None:
    posterior = GammaPosterior(shape=400.0, rate=2.0)
    wider = widened(posterior, 3.0)
    assert wider.mean == pytest.approx(posterior.mean, rel=1e-15)
    assert stats.gamma(wider.shape, scale=1 / wider.rate).var() == pytest.approx(
        3.0 * stats.gamma(400.0, scale=0.5).var(), rel=1e-12
    )
    assert widened(posterior, 1.0) is posterior


def test_variants_without_events_are_left_out_and_too_little_data_is_refused() -> None:
    events = _summary(np.array([0.0, 1, 2, 0, 4, 1]))
    result = dispersion_test({"control": MeanSummary(50, 0.0, 0.0), "test": events})
    assert result.df == 5
    with pytest.raises(StatsInputError, match="at least two subjects with events"):
        dispersion_test({"control": MeanSummary(50, 0.0, 0.0), "test": MeanSummary(2, 0, 0)})
