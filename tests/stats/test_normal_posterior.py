"""Normal posteriors of continuous and ratio metrics against scipy and closed forms.

The posterior's functions are compared with `scipy.stats.norm`; the informative update
with the conjugate formula written in precision form; the lift interval (Fieller's roots)
with the exact distribution of the ratio of two normals, integrated by `scipy.integrate.
quad` and inverted by `scipy.optimize.brentq`, which does not drop the control's mass
below zero; and P(best) with the closed form Φ(Δ / √(σ₁² + σ₂²)) and with quad.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from exp_pipeline.stats.best import expected_loss, probability_to_be_best
from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.intervals import lift_interval
from exp_pipeline.stats.normal_posterior import NormalPosterior, normal_posterior
from exp_pipeline.stats.priors import Prior


def _phi(z: float) -> float:
    """Standard normal distribution function (math.erfc: fast inside quad's loop)."""
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _exact_ratio_cdf(t: NormalPosterior, c: NormalPosterior, r: float) -> float:
    """P(T / C ≤ r) including the part of C below zero, where the inequality flips."""

    def integrand(y: float) -> float:
        z = (r * y - t.mean) / t.sd
        below_or_above = _phi(z) if y > 0 else _phi(-z)
        density = math.exp(-0.5 * ((y - c.mean) / c.sd) ** 2) / (c.sd * math.sqrt(2 * math.pi))
        return density * below_or_above

    lo, hi = c.mean - 12 * c.sd, c.mean + 12 * c.sd
    points = [0.0] if lo < 0 < hi else None
    value, _ = integrate.quad(integrand, lo, hi, points=points, epsabs=1e-13, epsrel=1e-12)
    return value


def _exact_lift_quantile(t: NormalPosterior, c: NormalPosterior, q: float) -> float:
    centre = t.mean / c.mean
    return optimize.brentq(lambda r: _exact_ratio_cdf(t, c, r) - q, centre - 5, centre + 5) - 1


@pytest.mark.parametrize(("mean", "sd"), [(0.0, 1.0), (42.5, 0.003), (-7.0, 120.0)])
def test_the_posterior_is_scipys_normal(mean: float, sd: float) -> None:
    posterior = NormalPosterior(mean, sd)
    reference = stats.norm(mean, sd)
    x = mean + sd * np.array([-30.0, -3.0, -0.5, 0.0, 1.0, 8.0, 30.0])
    q = np.array([1e-12, 0.025, 0.5, 0.975, 1 - 1e-9])
    np.testing.assert_allclose(posterior.pdf(x), reference.pdf(x), rtol=1e-12, atol=0)
    np.testing.assert_allclose(posterior.cdf(x), reference.cdf(x), rtol=1e-12, atol=0)
    # The upper tail is exact far out, where 1 − cdf is 0.
    np.testing.assert_allclose(posterior.sf(x), reference.sf(x), rtol=1e-12, atol=0)
    np.testing.assert_allclose(posterior.ppf(q), reference.ppf(q), rtol=1e-12, atol=1e-12 * sd)
    assert posterior.isf(1e-300) == pytest.approx(reference.isf(1e-300), rel=1e-12)
    assert posterior.mean == mean


def test_a_degenerate_posterior_is_refused() -> None:
    with pytest.raises(ValueError, match="sd must be finite and positive"):
        NormalPosterior(1.0, 0.0)
    with pytest.raises(StatsInputError, match="no variation between subjects"):
        normal_posterior(3.0, 0.0, 100)


def test_flat_posterior_is_the_estimate_with_its_sampling_variance() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(3.0, 1.0, 500)
    mean, variance = values.mean(), values.var(ddof=1) / values.size
    assert normal_posterior(mean, variance, values.size) == NormalPosterior(
        mean, math.sqrt(variance)
    )


@pytest.mark.parametrize(("estimate", "variance", "n"), [(12.0, 0.25, 400), (-0.3, 4e-4, 50)])
def test_an_informative_prior_is_the_conjugate_normal_update(
    estimate: float, variance: float, n: float
) -> None:
    prior = Prior(mean=10.0, weight=100)
    posterior = normal_posterior(estimate, variance, n, prior)
    # Prior N(m, σ²/w) with σ² = n·variance; precisions add, means weigh by precision.
    prior_variance = n * variance / prior.weight
    precision = 1 / prior_variance + 1 / variance
    expected_mean = (prior.mean / prior_variance + estimate / variance) / precision
    assert posterior.mean == pytest.approx(expected_mean, rel=1e-12)
    assert posterior.sd == pytest.approx(math.sqrt(1 / precision), rel=1e-12)


@pytest.mark.parametrize(
    ("treatment", "control"),
    [
        (NormalPosterior(11.0, 0.35), NormalPosterior(10.0, 0.3)),
        (NormalPosterior(0.0213, 0.0011), NormalPosterior(0.0201, 0.0009)),
        (NormalPosterior(-4.4, 0.5), NormalPosterior(-5.0, 0.4)),
        (NormalPosterior(2.0, 1.5), NormalPosterior(1.0, 0.12)),
    ],
)
def test_lift_interval_is_the_exact_ratio_quantiles(
    treatment: NormalPosterior, control: NormalPosterior
) -> None:
    low, high = lift_interval(treatment, control)
    assert low == pytest.approx(_exact_lift_quantile(treatment, control, 0.025), abs=1e-9)
    assert high == pytest.approx(_exact_lift_quantile(treatment, control, 0.975), abs=1e-9)
    # Asymmetric around the ratio of means, as the ratio's distribution is skewed.
    point = treatment.mean / control.mean - 1
    assert (high - point) != pytest.approx(point - low, rel=1e-3)


def test_lift_interval_near_a_control_close_to_zero() -> None:
    # 3.5 standard deviations from zero: Fieller's roots ignore 2e-4 of control's mass,
    # so their tail probabilities are off by at most that much.
    treatment, control = NormalPosterior(1.2, 0.3), NormalPosterior(1.0, 1 / 3.5)
    low, high = lift_interval(treatment, control)
    assert _exact_ratio_cdf(treatment, control, low + 1) == pytest.approx(0.025, abs=3e-4)
    assert _exact_ratio_cdf(treatment, control, high + 1) == pytest.approx(0.975, abs=3e-4)
    # Within 1.96 standard deviations of zero the ratio has no bounded interval.
    assert all(map(math.isnan, lift_interval(treatment, NormalPosterior(1.0, 0.6))))


def test_probability_to_be_best_is_the_closed_form_and_quad() -> None:
    control, test = NormalPosterior(10.0, 0.3), NormalPosterior(10.5, 0.4)
    two = probability_to_be_best({"control": control, "test": test})
    expected = stats.norm.cdf(0.5 / math.sqrt(0.3**2 + 0.4**2))
    assert two["test"] == pytest.approx(expected, abs=1e-9)

    third = NormalPosterior(10.2, 0.1)
    three = probability_to_be_best({"control": control, "test": test, "b": third})
    variants = {"control": control, "test": test, "b": third}
    for key, p in variants.items():
        others = [o for k, o in variants.items() if k != key]

        def integrand(x: float, p: NormalPosterior = p, others: list = others) -> float:
            return stats.norm.pdf(x, p.mean, p.sd) * math.prod(
                stats.norm.cdf(x, o.mean, o.sd) for o in others
            )

        value, _ = integrate.quad(integrand, 7, 13, epsabs=1e-12, limit=200)
        assert three[key] == pytest.approx(value, abs=1e-8)


def test_expected_loss_is_the_normal_closed_form() -> None:
    # E[max(C − T, 0)] for D = C − T ~ N(μ, s²) is μ Φ(μ/s) + s φ(μ/s).
    control, test = NormalPosterior(10.0, 0.3), NormalPosterior(10.5, 0.4)
    mu, s = -0.5, math.hypot(0.3, 0.4)
    expected = mu * stats.norm.cdf(mu / s) + s * stats.norm.pdf(mu / s)
    loss = expected_loss({"control": control, "test": test}, "test")
    assert loss == pytest.approx(expected, rel=1e-9)
