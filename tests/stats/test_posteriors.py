"""Posterior conventions (PostHog's) and the posteriors' distribution functions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from exp_pipeline.stats.inputs import FunnelCounts, TrendCounts
from exp_pipeline.stats.posteriors import (
    BetaPosterior,
    GammaPosterior,
    Posterior,
    funnel_posterior,
    relative_exposure,
    trend_posteriors,
)


def test_funnel_posterior_is_beta_of_one_plus_successes_and_failures() -> None:
    # 1000 entered, 130 reached the last step: 130 successes, 870 failures.
    assert funnel_posterior(FunnelCounts(1000, 130)) == BetaPosterior(131, 871)
    assert funnel_posterior(FunnelCounts(0, 0)) == BetaPosterior(1, 1)


def test_trend_posterior_rate_is_exposure_relative_to_control() -> None:
    counts = {"control": TrendCounts(4, 2), "test": TrendCounts(5, 1), "big": TrendCounts(9, 8)}
    assert trend_posteriors(counts, "control") == {
        "control": GammaPosterior(5, 1.0),
        "test": GammaPosterior(6, 0.5),
        "big": GammaPosterior(10, 4.0),
    }


@pytest.mark.parametrize(
    ("exposure", "control_exposure"), [(None, 10), (0, 10), (10, None), (10, 0), (None, None)]
)
def test_missing_or_zero_exposure_means_a_rate_of_one(
    exposure: float | None, control_exposure: float | None
) -> None:
    assert relative_exposure(exposure, control_exposure) == 1.0


def test_control_without_exposure_puts_every_variant_at_rate_one() -> None:
    counts = {"control": TrendCounts(4, None), "test": TrendCounts(5, 300)}
    assert {p.rate for p in trend_posteriors(counts, "control").values()} == {1.0}


@pytest.mark.parametrize(
    ("make", "bad"),
    [(BetaPosterior, (0, 1)), (BetaPosterior, (1, -2)), (GammaPosterior, (1, float("nan")))],
)
def test_parameters_must_be_finite_and_positive(make: type, bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="must be finite and positive"):
        make(*bad)


@pytest.mark.parametrize(
    ("posterior", "reference"),
    [
        (BetaPosterior(3, 1), stats.beta(3, 1)),
        (BetaPosterior(131, 871), stats.beta(131, 871)),
        (BetaPosterior(1.5, 2.5), stats.beta(1.5, 2.5)),
        (GammaPosterior(6, 0.5), stats.gamma(6, scale=2)),
        (GammaPosterior(1, 3), stats.gamma(1, scale=1 / 3)),
        (GammaPosterior(1001, 1.02), stats.gamma(1001, scale=1 / 1.02)),
    ],
)
def test_distribution_functions_match_scipy_stats(posterior: Posterior, reference: Any) -> None:
    q = np.array([1e-12, 1e-6, 0.025, 0.3, 0.5, 0.9, 0.975, 1 - 1e-6])
    x = reference.ppf(q)
    np.testing.assert_allclose(posterior.pdf(x), reference.pdf(x), rtol=1e-11)
    np.testing.assert_allclose(posterior.cdf(x), reference.cdf(x), rtol=1e-11)
    np.testing.assert_allclose(posterior.sf(x), reference.sf(x), rtol=1e-11)
    np.testing.assert_allclose(posterior.ppf(q), x, rtol=1e-11)
    np.testing.assert_allclose(posterior.isf(q), reference.isf(q), rtol=1e-11)
    assert posterior.mean == pytest.approx(reference.mean(), rel=1e-14)


def test_densities_vanish_outside_the_support() -> None:
    assert list(BetaPosterior(2, 3).pdf([-0.1, 1.1])) == [0.0, 0.0]
    assert list(BetaPosterior(2, 3).cdf([-0.1, 1.1])) == [0.0, 1.0]
    assert list(GammaPosterior(2, 3).pdf([-1.0])) == [0.0]
    assert list(GammaPosterior(2, 3).cdf([-1.0])) == [0.0]
