"""The Beta and Gamma functions stay accurate for parameters in the millions.

References are independent: scipy.stats' Beta density (Boost's, not the formula used
here), the textbook Gamma density evaluated in 60-digit decimal arithmetic, and scipy's
incomplete gamma function where it is sound.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
from scipy import special, stats

from exp_pipeline.stats.distribution_functions import (
    beta_log_pdf,
    gamma_cdf,
    gamma_log_pdf,
    gamma_sf,
    stirling_error,
)

_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494")


def _decimal_gamma_pdf(shape: float, y: float) -> float:
    """y^(a−1)·e^(−y) / Γ(a) in 60 digits, log Γ by Stirling's series (exact for a ≥ 1e4)."""
    getcontext().prec = 60
    a, x = Decimal(shape), Decimal(y)
    log_gamma = (
        (a - Decimal("0.5")) * a.ln() - a + (2 * _PI).ln() / 2 + 1 / (12 * a) - 1 / (360 * a**3)
    )
    return float(((a - 1) * x.ln() - x - log_gamma).exp())


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1),
        (1, 2),
        (2, 1),
        (3, 1),
        (2, 3),
        (1.5, 7.25),
        (131, 871),
        (100001, 6),
        (6, 100001),
        (1, 100001),
        (100001, 1),
        (3, 100001),
        (50001, 50001),
        (1e6, 1e6),
        (1e7, 3e6),
    ],
)
def test_beta_density_matches_boost(a: float, b: float) -> None:
    reference = stats.beta(a, b)
    x = reference.ppf([1e-12, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6, 1 - 1e-12])
    np.testing.assert_allclose(np.exp(beta_log_pdf(a, b, x)), reference.pdf(x), rtol=1e-10)


@pytest.mark.parametrize("shape", [1e4, 1e6, 1e8, 1e10])
def test_gamma_density_matches_high_precision_arithmetic(shape: float) -> None:
    for z in (-7, -3, -1, 0, 1, 3, 7):
        y = shape + z * math.sqrt(shape)
        ours = math.exp(gamma_log_pdf(shape, np.array(y)))
        assert ours == pytest.approx(_decimal_gamma_pdf(shape, y), rel=2e-10)


@pytest.mark.parametrize("shape", [1, 1.5, 2, 6, 50.5, 1001])
def test_gamma_density_matches_scipy_for_small_shapes(shape: float) -> None:
    reference = stats.gamma(shape)
    y = reference.ppf([1e-12, 1e-3, 0.5, 0.999, 1 - 1e-12])
    np.testing.assert_allclose(np.exp(gamma_log_pdf(shape, y)), reference.pdf(y), rtol=1e-12)


def _decimal_stirling_error(n: int) -> float:
    """log(n!) − (n + ½)·log n + n − ½·log 2π for an integer n, in 60 digits."""
    getcontext().prec = 60
    d = Decimal(n)
    return float(
        Decimal(math.factorial(n)).ln() - (d + Decimal("0.5")) * d.ln() + d - (2 * _PI).ln() / 2
    )


@pytest.mark.parametrize("n", [1, 2, 7, 14, 15, 16, 40, 1000])
def test_stirling_error_on_both_sides_of_the_series_threshold(n: int) -> None:
    assert stirling_error(float(n)) == pytest.approx(
        _decimal_stirling_error(n), rel=1e-11, abs=3e-14
    )


@pytest.mark.parametrize("shape", [1, 3.5, 100, 1e4, 1e5])
def test_gamma_cdf_is_scipys_where_scipy_is_sound(shape: float) -> None:
    y = stats.gamma(shape).ppf([1e-12, 1e-6, 0.001, 0.5, 0.999, 1 - 1e-12])
    np.testing.assert_allclose(gamma_cdf(shape, y), special.gammainc(shape, y), rtol=1e-11)
    np.testing.assert_allclose(gamma_sf(shape, y), special.gammaincc(shape, y), rtol=1e-11)


@pytest.mark.parametrize("shape", [1e4, 1e6, 1e8, 1e10])
def test_gamma_lower_tail_equals_the_integral_of_the_density(shape: float) -> None:
    """F(y) − F(y₀) must equal ∫ f over [y₀, y]; the density is verified independently above.

    Integrated by scipy's adaptive quad on a standardised axis from 12 standard deviations
    below the mean, where F is below 1e-32.
    """
    from scipy import integrate

    sd = math.sqrt(shape)
    start = shape - 12 * sd
    for z in (-7, -5.5, -4.5, -3.5, -2.5):
        mass, _ = integrate.quad(
            lambda t: sd * math.exp(gamma_log_pdf(shape, np.array(shape + t * sd))),
            -12,
            z,
            epsabs=1e-15,
            epsrel=1e-12,
            limit=200,
        )
        cdf = float(gamma_cdf(shape, np.array(shape + z * sd)))
        assert cdf == pytest.approx(mass + float(gamma_cdf(shape, np.array(start))), rel=1e-9)
        assert float(gamma_sf(shape, np.array(shape + z * sd))) == pytest.approx(1 - cdf, abs=5e-16)
