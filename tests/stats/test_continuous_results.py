"""Bayesian results of continuous and ratio metrics, P(beats control), widened trends.

Independent computations: numpy moments of raw per-subject values, `scipy.stats.norm`
quantiles and the closed form P(T > C) = Φ((μt − μc) / √(σt² + σc²)). The calibration
test simulates 2000 skewed (log-normal) variants of 500 subjects: the 95% credible
interval of a flat-prior posterior must cover the true mean 95% ± 1.5 points (three
binomial standard errors), which it can only do if its variance comes from the data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.intervals import credible_interval
from exp_pipeline.stats.means import MeanSummary
from exp_pipeline.stats.normal_posterior import NormalPosterior, normal_posterior
from exp_pipeline.stats.ratios import RatioSummary, ratio_estimate
from exp_pipeline.stats.results import analyse_continuous, analyse_ratio, analyse_trend
from exp_pipeline.stats.significance import MetricKind, SignificanceCode

COVERAGE_SIMULATIONS = 2000
COVERAGE_TOLERANCE = 3 * math.sqrt(0.05 * 0.95 / COVERAGE_SIMULATIONS)


def _revenue(seed: int, n: int, scale: float) -> np.ndarray:
    """Per-subject revenue: most subjects buy nothing, buyers spend log-normally."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.2, rng.lognormal(np.log(scale), 0.8, n), 0.0)


def _sums(values: np.ndarray) -> MeanSummary:
    return MeanSummary.from_sums(values.size, float(values.sum()), float(values @ values))


def test_summary_from_sums_is_numpys_mean_and_sample_variance() -> None:
    values = _revenue(1, 3000, 40.0)
    summary = _sums(values)
    assert summary.n == 3000
    assert summary.mean == pytest.approx(values.mean(), rel=1e-12)
    assert summary.variance == pytest.approx(values.var(ddof=1), rel=1e-10)
    with pytest.raises(StatsInputError, match="n must be at least 2"):
        MeanSummary.from_sums(1, 5.0, 25.0)


def test_continuous_posterior_mean_and_spread_come_from_the_data() -> None:
    control, test = _revenue(2, 4000, 40.0), _revenue(3, 4000, 46.0)
    result = analyse_continuous({"test": _sums(test), "control": _sums(control)})
    assert result.kind == MetricKind.CONTINUOUS and list(result.posteriors) == ["control", "test"]
    for key, values in (("control", control), ("test", test)):
        sd = values.std(ddof=1) / math.sqrt(values.size)
        posterior = result.posteriors[key]
        assert posterior.mean == pytest.approx(values.mean(), rel=1e-12)
        assert posterior.sd == pytest.approx(sd, rel=1e-9)
        expected = stats.norm(values.mean(), sd).ppf([0.025, 0.975])
        assert result.credible_intervals[key] == pytest.approx(expected, rel=1e-9)
    c, t = result.posteriors["control"], result.posteriors["test"]
    beats = stats.norm.cdf((t.mean - c.mean) / math.hypot(t.sd, c.sd))
    assert result.beats_control["test"] == pytest.approx(beats, abs=1e-9)
    assert result.probabilities["test"] == pytest.approx(beats, abs=1e-9)


def test_flat_posterior_intervals_cover_the_true_mean_95_percent() -> None:
    # Skewness makes a normal interval under-cover slightly at small n (93.6% at n = 200
    # with σ = 0.9 in a 20 000-run check); at n = 500, σ = 0.5 it is 94.8%.
    rng = np.random.default_rng(11)
    n, mu, sigma = 500, math.log(30.0), 0.5
    values = rng.lognormal(mu, sigma, (COVERAGE_SIMULATIONS, n))
    true_mean = math.exp(mu + sigma**2 / 2)
    covered = 0
    for row in values:
        summary = _sums(row)
        posterior = normal_posterior(summary.mean, summary.variance / n, n)
        low, high = credible_interval(posterior)
        covered += low <= true_mean <= high
    assert covered / COVERAGE_SIMULATIONS == pytest.approx(0.95, abs=COVERAGE_TOLERANCE)


def test_beats_control_differs_from_best_with_three_variants() -> None:
    summaries = {
        "control": MeanSummary(1000, 10.0, 100.0),
        "a": MeanSummary(1000, 10.8, 100.0),
        "b": MeanSummary(1000, 10.9, 100.0),
    }
    result = analyse_continuous(summaries)
    se = math.sqrt(100.0 / 1000)
    for key, mean in (("a", 10.8), ("b", 10.9)):
        expected = stats.norm.cdf((mean - 10.0) / (se * math.sqrt(2)))
        assert result.beats_control[key] == pytest.approx(expected, abs=1e-9)
    # Both beat control almost surely, but only one can be best.
    assert result.probabilities["a"] < 0.5 < result.beats_control["a"]
    assert result.code == SignificanceCode.LOW_WIN_PROBABILITY


def test_continuous_codes_follow_exposure() -> None:
    small = analyse_continuous({"control": MeanSummary(99, 1.0, 1.0), "t": MeanSummary(500, 2, 1)})
    assert small.code == SignificanceCode.NOT_ENOUGH_EXPOSURE and small.expected_loss == 1.0
    big = analyse_continuous({"control": MeanSummary(500, 1.0, 1.0), "t": MeanSummary(500, 2, 1)})
    assert big.code == SignificanceCode.SIGNIFICANT and big.best_variant == "t"


def test_identical_values_cannot_be_analysed() -> None:
    with pytest.raises(StatsInputError, match="no variation between subjects"):
        analyse_continuous({"control": MeanSummary(300, 0.0, 0.0), "t": MeanSummary(300, 1, 1)})


def test_ratio_posterior_is_the_delta_method_normal() -> None:
    rng = np.random.default_rng(5)
    sessions = {k: 1 + rng.poisson(3.0, 2000) for k in ("control", "test")}
    clicks = {k: rng.binomial(s, 0.12 if k == "control" else 0.14) for k, s in sessions.items()}
    summaries = {k: RatioSummary.from_values(clicks[k], sessions[k]) for k in sessions}
    result = analyse_ratio(summaries)
    assert result.kind == MetricKind.RATIO
    for key, summary in summaries.items():
        ratio, variance = ratio_estimate(summary)
        assert ratio == pytest.approx(clicks[key].sum() / sessions[key].sum(), rel=1e-12)
        assert result.posteriors[key] == NormalPosterior(ratio, math.sqrt(variance))
    c, t = result.posteriors["control"], result.posteriors["test"]
    beats = stats.norm.cdf((t.mean - c.mean) / math.hypot(t.sd, c.sd))
    assert result.beats_control["test"] == pytest.approx(beats, abs=1e-9)
    low, high = result.lift_intervals["test"]
    assert low < t.mean / c.mean - 1 < high


def test_trend_widening_keeps_the_mean_and_multiplies_the_variance() -> None:
    counts, exposures = {"control": 900, "test": 1000}, {"control": 400, "test": 410}
    plain = analyse_trend(counts, exposures)
    wide = analyse_trend(counts, exposures, widening=2.5)
    for key in counts:
        p, w = plain.posteriors[key], wide.posteriors[key]
        assert w.mean == pytest.approx(p.mean, rel=1e-12)
        assert w.shape / w.rate**2 == pytest.approx(2.5 * p.shape / p.rate**2, rel=1e-12)
    # Wider posteriors: the winner is less certain.
    assert wide.probabilities["test"] < plain.probabilities["test"]
    with pytest.raises(StatsInputError, match="widening must be"):
        analyse_trend(counts, exposures, widening=0.5)


def test_lower_is_better_ranks_the_lowest_first_on_the_same_posteriors() -> None:
    summaries = {"control": MeanSummary(2000, 0.05, 0.05), "test": MeanSummary(2000, 0.2, 0.16)}
    higher = analyse_continuous(summaries)
    lower = analyse_continuous(summaries, lower_is_better=True)
    assert lower.posteriors == higher.posteriors
    assert lower.credible_intervals == higher.credible_intervals
    assert lower.lift_intervals == higher.lift_intervals
    c, t = lower.posteriors["control"], lower.posteriors["test"]
    mu, s = t.mean - c.mean, math.hypot(t.sd, c.sd)
    # P(test < control), and the loss of keeping control: E[max(C − T, 0)], C − T ~ N(−μ, s²).
    assert lower.beats_control["test"] == pytest.approx(stats.norm.cdf(-mu / s), abs=1e-12)
    assert lower.best_variant == "control" and higher.best_variant == "test"
    loss = -mu * stats.norm.cdf(-mu / s) + s * stats.norm.pdf(mu / s)
    assert lower.expected_loss == pytest.approx(loss, rel=1e-6, abs=1e-15)


def test_lower_is_better_loss_when_the_lower_variant_is_uncertain() -> None:
    summaries = {"control": MeanSummary(500, 1.0, 4.0), "test": MeanSummary(500, 0.9, 4.0)}
    result = analyse_continuous(summaries, lower_is_better=True)
    c, t = result.posteriors["control"], result.posteriors["test"]
    # Best is test (lower); its loss is E[max(T − C, 0)] with T − C ~ N(μ, s²).
    mu, s = t.mean - c.mean, math.hypot(t.sd, c.sd)
    assert result.best_variant == "test"
    expected = mu * stats.norm.cdf(mu / s) + s * stats.norm.pdf(mu / s)
    assert result.expected_loss == pytest.approx(expected, rel=1e-9)
