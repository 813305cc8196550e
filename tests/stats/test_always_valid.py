"""Two-sided always-valid inference: closed forms, and A/A simulations with daily peeking.

Closed forms written here: Λ from its formula, the confidence sequence as the set where
Λ(θ̂ − θ₀) < 1/α (its ends solve Λ = 1/α exactly). Seeded simulations, vectorised over
experiments with the public functions `always_valid_test` is built from (one test
checks the two paths agree): 2000 experiments of 14 daily looks. Tolerance for a
false-positive rate: alpha plus three binomial standard errors at alpha (1.5 points).
The fixed-horizon test peeked at daily is simulated beside it, and must exceed alpha by
far, so the simulation demonstrably detects the inflation it guards against.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import special

from exp_pipeline.stats.always_valid import (
    DEFAULT_RELATIVE_TAU,
    always_valid_p_value,
    always_valid_test,
    confidence_sequence_half_width,
    relative_tau_scale,
)
from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.means import MeanSummary, welch_t_test
from exp_pipeline.stats.multiple_testing import e_bh_adjust
from exp_pipeline.stats.proportions import two_proportion_z_test

ALPHA = 0.05
EXPERIMENTS = 2000
LOOKS = 14
DAILY_SUBJECTS = 300
TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / EXPERIMENTS)


def _lambda(effect: float, variance: float, tau: float) -> float:
    spread = variance + tau**2
    return math.sqrt(variance / spread) * math.exp(tau**2 * effect**2 / (2 * variance * spread))


def _cumulative_conversions(
    rng: np.random.Generator, rate: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Conversions and subjects so far, per experiment (rows) and daily look (columns)."""
    conversions = np.cumsum(rng.binomial(DAILY_SUBJECTS, rate, (EXPERIMENTS, LOOKS)), axis=1)
    subjects = DAILY_SUBJECTS * np.arange(1, LOOKS + 1, dtype=np.float64)
    return conversions.astype(np.float64), np.broadcast_to(subjects, conversions.shape)


def _proportion_looks(
    control_rate: float, treatment_rate: float, seed: int
) -> tuple[npt.NDArray[np.float64], ...]:
    """Effect, variance and tau at every look, as `two_proportion_z_test` computes them."""
    rng = np.random.default_rng(seed)
    (x_c, n), (x_t, _) = (_cumulative_conversions(rng, r) for r in (control_rate, treatment_rate))
    p_c, p_t = x_c / n, x_t / n
    variance = p_c * (1 - p_c) / n + p_t * (1 - p_t) / n
    return p_t - p_c, variance, relative_tau_scale(p_c, p_t, DEFAULT_RELATIVE_TAU)


def test_p_value_and_e_value_are_the_mixture_ratio() -> None:
    frequentist = two_proportion_z_test(500, 5000, 590, 5000)
    result = always_valid_test(frequentist)
    tau = DEFAULT_RELATIVE_TAU * (0.1 + 0.118) / 2
    lam = _lambda(0.018, frequentist.standard_error**2, tau)
    assert result.tau == pytest.approx(tau, rel=1e-12)
    assert result.e_value == pytest.approx(lam, rel=1e-10)
    assert result.p_value == pytest.approx(1 / lam, rel=1e-10)
    # Always-valid is the price of looking daily: larger than the fixed-horizon p-value.
    assert frequentist.p_value < result.p_value < 1


def test_confidence_sequence_ends_are_where_the_mixture_reaches_one_over_alpha() -> None:
    result = always_valid_test(
        welch_t_test(MeanSummary(800, 10.0, 90.0), MeanSummary(820, 11.1, 95.0))
    )
    variance = 90.0 / 800 + 95.0 / 820
    low, high = result.confidence_sequence
    effect = 1.1
    assert (low + high) / 2 == pytest.approx(effect, rel=1e-12)
    for end in (low, high):
        assert _lambda(effect - end, variance, result.tau) == pytest.approx(1 / ALPHA, rel=1e-9)
    # 0 outside the sequence exactly when the p-value is at most alpha.
    assert (low > 0) == (result.p_value <= ALPHA)


def test_scalar_and_vectorised_paths_agree() -> None:
    cases = [(100, 1000, 130, 1000), (40, 900, 38, 950), (1000, 20_000, 1100, 20_000)]
    for x_c, n_c, x_t, n_t in cases:
        result = always_valid_test(two_proportion_z_test(x_c, n_c, x_t, n_t))
        p_c, p_t = x_c / n_c, x_t / n_t
        variance = p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t
        tau = relative_tau_scale(p_c, p_t, DEFAULT_RELATIVE_TAU)
        # The scalar path squares the result's standard error: equal to rounding.
        expected = float(always_valid_p_value(p_t - p_c, variance, tau))
        assert result.p_value == pytest.approx(expected, rel=1e-12)
        half = float(confidence_sequence_half_width(variance, tau, ALPHA))
        expected_sequence = (p_t - p_c - half, p_t - p_c + half)
        assert result.confidence_sequence == pytest.approx(expected_sequence, rel=1e-12)


def test_untestable_looks_are_nan_and_bad_arguments_are_refused() -> None:
    result = always_valid_test(two_proportion_z_test(0, 100, 0, 100))
    assert math.isnan(result.p_value) and math.isnan(result.e_value)
    with pytest.raises(StatsInputError, match="alpha"):
        always_valid_test(two_proportion_z_test(5, 100, 7, 100), alpha=1.5)
    with pytest.raises(StatsInputError, match="relative_tau"):
        always_valid_test(two_proportion_z_test(5, 100, 7, 100), relative_tau=0)


def test_daily_peeking_at_an_a_a_funnel_stays_under_alpha() -> None:
    effect, variance, tau = _proportion_looks(0.1, 0.1, seed=1)
    always_valid = (always_valid_p_value(effect, variance, tau) <= ALPHA).any(axis=1).mean()
    fixed = (2 * special.ndtr(-np.abs(effect) / np.sqrt(variance)) <= ALPHA).any(axis=1).mean()
    assert always_valid <= ALPHA + TOLERANCE
    assert fixed > ALPHA + 5 * TOLERANCE  # about 23%: what peeking does to a fixed test


def test_daily_peeking_at_an_a_a_revenue_metric_stays_under_alpha() -> None:
    # Welch on skewed revenue: 80% of subjects spend nothing, buyers log-normally.
    rng = np.random.default_rng(2)
    daily = 100
    shape = (EXPERIMENTS, LOOKS, daily)
    sums = {}
    for key in ("control", "test"):
        values = np.where(rng.random(shape) < 0.2, rng.lognormal(3.5, 1.0, shape), 0.0)
        sums[key] = (np.cumsum(values.sum(2), 1), np.cumsum((values**2).sum(2), 1))
    n = daily * np.arange(1, LOOKS + 1)
    means = {k: total / n for k, (total, _) in sums.items()}
    variances = {k: (sq - n * means[k] ** 2) / (n - 1) / n for k, (_, sq) in sums.items()}
    effect = means["test"] - means["control"]
    variance = variances["test"] + variances["control"]
    tau = relative_tau_scale(means["control"], means["test"], DEFAULT_RELATIVE_TAU)
    rejected = (always_valid_p_value(effect, variance, tau) <= ALPHA).any(axis=1).mean()
    assert rejected <= ALPHA + TOLERANCE


def test_a_real_lift_is_found_and_the_sequence_keeps_covering_it() -> None:
    # A 20% lift (10% → 12%), 4200 subjects per arm after 14 days.
    effect, variance, tau = _proportion_looks(0.1, 0.12, seed=3)
    found = (always_valid_p_value(effect, variance, tau) <= ALPHA).any(axis=1).mean()
    assert found > 0.35  # about 46% (the fixed test at the end alone: 84%)
    half = confidence_sequence_half_width(variance, tau, ALPHA)
    missed = (np.abs(effect - 0.02) >= half).any(axis=1).mean()
    assert missed <= ALPHA + TOLERANCE


def test_e_bh_across_comparisons_and_daily_looks_keeps_the_false_discovery_rate() -> None:
    # Eight comparisons (say 2 variants × 2 metrics × 2 segments), three with a real 20%
    # lift; the analyst acts at the first look where e-BH makes any discovery.
    true_lifts = [0.12, 0.12, 0.12, 0.1, 0.1, 0.1, 0.1, 0.1]
    looks = [_proportion_looks(0.1, rate, seed=10 + i) for i, rate in enumerate(true_lifts)]
    effect, variance, tau = (np.stack([look[j] for look in looks], axis=2) for j in range(3))
    spread = variance + tau**2
    e_values = np.sqrt(variance / spread) * np.exp(tau**2 * effect**2 / (2 * variance * spread))
    null = np.array([rate == 0.1 for rate in true_lifts])
    # e-BH discovers something at a look iff k·e₍ₖ₎ ≥ m / alpha for some k.
    m = len(true_lifts)
    ranked = -np.sort(-e_values, axis=2) * np.arange(1, m + 1)
    any_discovery = (ranked >= m / ALPHA).any(axis=2)
    stop = np.where(any_discovery.any(axis=1), any_discovery.argmax(axis=1), LOOKS - 1)
    proportions = []
    for experiment, day in zip(e_values, stop, strict=True):
        rejected = np.array(e_bh_adjust(experiment[day].tolist())) <= ALPHA
        proportions.append((rejected & null).sum() / max(rejected.sum(), 1))
    assert np.mean(proportions) <= ALPHA + TOLERANCE
    assert any_discovery.any(axis=1).mean() > 0.3  # the real lifts are found: about 45%
