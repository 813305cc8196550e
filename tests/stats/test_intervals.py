"""Credible and lift intervals against scipy's quantiles, quadrature identities and simulation.

Simulated lift intervals are checked where simulation is sharp: the fraction of 2e6 seeded
draws of X_variant / X_control − 1 below each bound must be the bound's tail probability
within 1e-3 (its standard error is 1.1e-4 at 0.025).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats

from exp_pipeline.stats.intervals import credible_interval, lift_interval, ratio_cdf
from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior, Posterior

DRAWS = 2_000_000
SIMULATED_TAIL_TOLERANCE = 1e-3


def _draws(posterior: Posterior, rng: np.random.Generator) -> np.ndarray:
    if isinstance(posterior, BetaPosterior):
        return rng.beta(posterior.alpha, posterior.beta, DRAWS)
    assert isinstance(posterior, GammaPosterior)
    return rng.gamma(posterior.shape, 1 / posterior.rate, DRAWS)


def _assert_matches_simulation(variant: Posterior, control: Posterior, level: float) -> None:
    rng = np.random.default_rng(20_251_123)
    lift = _draws(variant, rng) / _draws(control, rng) - 1
    lower, upper = lift_interval(variant, control, level)
    tail = (1 - level) / 2
    assert np.mean(lift <= lower) == pytest.approx(tail, abs=SIMULATED_TAIL_TOLERANCE)
    assert np.mean(lift > upper) == pytest.approx(tail, abs=SIMULATED_TAIL_TOLERANCE)


def _scipy_equivalent(posterior: Posterior) -> Any:
    if isinstance(posterior, BetaPosterior):
        return stats.beta(posterior.alpha, posterior.beta)
    assert isinstance(posterior, GammaPosterior)
    return stats.gamma(posterior.shape, scale=1 / posterior.rate)


@pytest.mark.parametrize(
    "posterior",
    [BetaPosterior(3, 1), BetaPosterior(100001, 6), GammaPosterior(6, 0.5), GammaPosterior(1e6, 3)],
    ids=repr,
)
@pytest.mark.parametrize("level", [0.95, 0.8, 0.99])
def test_credible_interval_is_the_central_quantiles(posterior: Posterior, level: float) -> None:
    expected = _scipy_equivalent(posterior).ppf([(1 - level) / 2, (1 + level) / 2])
    assert credible_interval(posterior, level) == pytest.approx(tuple(expected), rel=1e-12)


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.2])
def test_level_must_be_strictly_between_zero_and_one(level: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        credible_interval(BetaPosterior(1, 1), level)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        lift_interval(BetaPosterior(1, 1), BetaPosterior(2, 1), level)


GAMMA_PAIRS = [
    (GammaPosterior(6, 0.5), GammaPosterior(5, 1)),  # the reference trend
    (GammaPosterior(1101, 1.02), GammaPosterior(1001, 1)),
    (GammaPosterior(1, 1), GammaPosterior(3, 1)),
    (GammaPosterior(1e6 + 1500, 1), GammaPosterior(1e6, 1)),
]
BETA_PAIRS = [
    (BetaPosterior(2, 3), BetaPosterior(3, 1)),  # the reference funnel
    (BetaPosterior(121, 881), BetaPosterior(101, 901)),
    (BetaPosterior(1, 1), BetaPosterior(1, 1)),
    (BetaPosterior(100001, 8), BetaPosterior(100001, 6)),
    (BetaPosterior(3, 100001), BetaPosterior(1, 100001)),
    (BetaPosterior(2, 3), BetaPosterior(100001, 6)),
]


@pytest.mark.parametrize(("variant", "control"), GAMMA_PAIRS, ids=repr)
def test_gamma_lift_interval_matches_simulation(variant: Posterior, control: Posterior) -> None:
    _assert_matches_simulation(variant, control, 0.95)


@pytest.mark.parametrize(("variant", "control"), BETA_PAIRS, ids=repr)
def test_beta_lift_interval_matches_simulation(variant: Posterior, control: Posterior) -> None:
    _assert_matches_simulation(variant, control, 0.95)


@pytest.mark.parametrize(("variant", "control"), GAMMA_PAIRS, ids=repr)
def test_gamma_closed_form_agrees_with_the_quadrature_ratio(
    variant: GammaPosterior, control: GammaPosterior
) -> None:
    """The Beta-prime closed form and the generic ratio quadrature are independent paths."""
    lower, upper = lift_interval(variant, control)
    assert ratio_cdf(variant, control, 1 + lower) == pytest.approx(0.025, abs=1e-10)
    assert ratio_cdf(variant, control, 1 + upper) == pytest.approx(0.975, abs=1e-10)


@pytest.mark.parametrize(("variant", "control"), BETA_PAIRS, ids=repr)
@pytest.mark.parametrize("level", [0.95, 0.5])
def test_beta_lift_bounds_are_roots_of_the_ratio_distribution(
    variant: BetaPosterior, control: BetaPosterior, level: float
) -> None:
    lower, upper = lift_interval(variant, control, level)
    assert lower < upper
    assert ratio_cdf(variant, control, 1 + lower) == pytest.approx((1 - level) / 2, abs=1e-11)
    assert ratio_cdf(variant, control, 1 + upper) == pytest.approx((1 + level) / 2, abs=1e-11)


@pytest.mark.parametrize("ratio", [0.3, 0.8, 1.0, 1.7])
def test_ratio_distribution_matches_a_double_integral(ratio: float) -> None:
    """P(T / C ≤ r) = ∫∫_{t ≤ r·c} f_T(t)·f_C(c) dt dc, integrated directly."""
    variant, control = BetaPosterior(4, 7), BetaPosterior(5, 6)

    def density(t: float, c: float) -> float:  # dblquad passes the inner variable first
        return float(variant.pdf(t)[()]) * float(control.pdf(c)[()])

    direct, _ = integrate.dblquad(
        density, 0, 1, 0, lambda c: min(1.0, ratio * c), epsabs=1e-13, epsrel=1e-11
    )
    assert ratio_cdf(variant, control, ratio) == pytest.approx(direct, abs=1e-10)


def test_ratio_distribution_is_zero_for_non_positive_ratios() -> None:
    assert ratio_cdf(BetaPosterior(2, 2), BetaPosterior(2, 2), 0) == 0.0
    assert ratio_cdf(BetaPosterior(2, 2), BetaPosterior(2, 2), -1) == 0.0


def test_identical_posteriors_have_a_lift_interval_symmetric_in_log_ratio() -> None:
    posterior = BetaPosterior(121, 881)
    lower, upper = lift_interval(posterior, posterior)
    assert math.log1p(lower) == pytest.approx(-math.log1p(upper), rel=1e-9)


def test_lift_needs_posteriors_of_one_family() -> None:
    with pytest.raises(ValueError, match="two Beta or two Gamma posteriors"):
        lift_interval(BetaPosterior(1, 1), GammaPosterior(1, 1))
