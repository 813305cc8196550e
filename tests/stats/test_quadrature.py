"""The quantile-split Gauss-Legendre rule: exactness, coverage and mass of every posterior."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior, Posterior
from exp_pipeline.stats.quadrature import (
    GAUSS_LEGENDRE_ORDER,
    TAIL_PROBABILITY,
    gauss_legendre_rule,
    integration_range,
    quantile_breaks,
    weighted_sum,
)

EXTREME_POSTERIORS = [
    BetaPosterior(1, 1),
    BetaPosterior(3, 1),
    BetaPosterior(1.5, 7.25),
    BetaPosterior(1.05, 3),
    BetaPosterior(3, 1.001),
    BetaPosterior(100001, 6),
    BetaPosterior(6, 100001),
    BetaPosterior(1, 100001),
    BetaPosterior(1e6, 1e6),
    GammaPosterior(1, 1),
    GammaPosterior(1, 1e-6),
    GammaPosterior(1.01, 2),
    GammaPosterior(6, 0.5),
    GammaPosterior(1e6, 1),
    GammaPosterior(1e10, 3),
]


def test_rule_integrates_polynomials_of_degree_below_twice_the_order_exactly() -> None:
    breaks = [np.array([0.0, 0.3, 1.7]), np.array([1.0, 2.5])]
    nodes, weights = gauss_legendre_rule(breaks, 0.0, 2.5)
    degree = 2 * GAUSS_LEGENDRE_ORDER - 1
    exact = 2.5 ** (degree + 1) / (degree + 1)
    assert weighted_sum(nodes**degree, weights) == pytest.approx(exact, rel=1e-14)
    assert weighted_sum(np.ones_like(nodes), weights) == pytest.approx(2.5, rel=1e-15)


def test_rule_clips_merges_and_deduplicates_break_points() -> None:
    nodes, weights = gauss_legendre_rule(
        [np.array([-5.0, 0.5, 0.5, 2.0]), np.array([np.inf, 0.5])], 0.0, 1.0
    )
    assert nodes.min() > 0 and nodes.max() < 1
    assert len(nodes) == 2 * GAUSS_LEGENDRE_ORDER  # intervals [0, 0.5] and [0.5, 1]
    assert np.all(weights > 0)


def _size_biased(posterior: Posterior) -> Posterior:
    """The distribution with density x·f(x) / mean: one more success, or one more event."""
    if isinstance(posterior, BetaPosterior):
        return BetaPosterior(posterior.alpha + 1, posterior.beta)
    assert isinstance(posterior, GammaPosterior)
    return GammaPosterior(posterior.shape + 1, posterior.rate)


@pytest.mark.parametrize("posterior", EXTREME_POSTERIORS, ids=repr)
def test_break_points_run_from_the_lower_to_the_upper_tail_quantile(posterior: Posterior) -> None:
    breaks = quantile_breaks(posterior)
    assert np.all(np.isfinite(breaks)) and np.all(np.diff(breaks) >= 0)
    lower, upper = integration_range(posterior)
    assert (breaks[0], breaks[-1]) == (lower, upper)
    assert float(posterior.sf(upper)) == pytest.approx(TAIL_PROBABILITY, rel=1e-3)
    # scipy's inverse is off in the far lower tail of huge Gamma shapes (see
    # distribution_functions); the cut there stays below 1e-11.
    assert TAIL_PROBABILITY * 0.999 < float(posterior.cdf(lower)) < 1e-11


@pytest.mark.parametrize("posterior", EXTREME_POSTERIORS, ids=repr)
def test_every_posterior_integrates_to_its_mass_inside_the_range(posterior: Posterior) -> None:
    """Mass and first moment against incomplete beta/gamma functions, 3e-12 or better.

    E[X·1{lo < X < hi}] = mean·(G(hi) − G(lo)) with G the size-biased distribution.
    """
    lower, upper = integration_range(posterior)
    nodes, weights = gauss_legendre_rule([quantile_breaks(posterior)], lower, upper)
    mass = weighted_sum(posterior.pdf(nodes), weights)
    assert mass == pytest.approx(float(posterior.cdf(upper) - posterior.cdf(lower)), abs=3e-12)
    assert 1 - mass < 1.2e-11
    moment = weighted_sum(nodes * posterior.pdf(nodes), weights)
    biased = _size_biased(posterior)
    expected = posterior.mean * float(biased.cdf(upper) - biased.cdf(lower))
    assert moment == pytest.approx(expected, rel=1e-11)


def test_weighted_sum_adds_intervals_exactly_whatever_their_order() -> None:
    per_interval = np.zeros((40, GAUSS_LEGENDRE_ORDER))
    per_interval[:, 0] = [1e16, 1.0, -1e16, 1.0] * 10  # left to right gives 1.0
    order = list(range(len(per_interval)))
    random.Random(7).shuffle(order)
    ones = np.ones(per_interval.size)
    assert weighted_sum(per_interval.ravel(), ones) == 20.0
    assert weighted_sum(per_interval[order].ravel(), ones) == 20.0
    nodes, weights = gauss_legendre_rule([np.linspace(0, 1, 30)], 0.0, 1.0)
    values = np.exp(-300 * nodes) * 1e300
    assert weighted_sum(values, weights) == pytest.approx(
        math.fsum((values * weights).tolist()), rel=1e-15
    )
