"""Probability to be best and expected loss against independent computations.

References: exact rational arithmetic for Evan Miller's closed form (two Betas with an
integer parameter) and for the negative-binomial sum (two Gammas with integer shapes),
the regularised incomplete beta function for two Gammas of any shape, symmetry, a direct
double integral, and seeded Monte Carlo with 2e6 draws.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from scipy import integrate, special

from exp_pipeline.stats import best
from exp_pipeline.stats.best import expected_loss, probability_to_be_best
from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior, Posterior
from exp_pipeline.stats.quadrature import IntegrationError

DRAWS = 2_000_000
# Monte Carlo tolerance for probabilities: a proportion from 2e6 draws has a standard
# error of at most 3.5e-4, so 3e-3 is over eight standard errors.
MC_PROBABILITY_TOLERANCE = 3e-3


def _beta_function(m: int, n: int) -> Fraction:
    """B(m, n) = (s − 1)! / (l·(l + 1)···(l + s − 1)) exactly, s and l the smaller and larger."""
    small, large = min(m, n), max(m, n)
    return Fraction(math.factorial(small - 1), math.prod(range(large, large + small)))


def _miller_beta(a_a: int, b_a: int, a_b: int, b_b: int) -> Fraction:
    """P(X_B > X_A) for X ~ Beta(a, b) with integer parameters (Evan Miller's formula).

    Sums over a_B terms; P(X_B > X_A) = P(1 − X_A > 1 − X_B), with 1 − X ~ Beta(b, a),
    sums over b_A terms instead, whichever is fewer.
    """
    if b_a < a_b:
        return _miller_beta(b_b, a_b, b_a, a_a)
    return sum(
        (
            _beta_function(a_a + i, b_a + b_b)
            / ((b_b + i) * _beta_function(1 + i, b_b) * _beta_function(a_a, b_a))
            for i in range(a_b)
        ),
        Fraction(0),
    )


def _gamma_pair_sum(k_a: int, rate_a: float, k_b: int, rate_b: float) -> Fraction:
    """P(X_B > X_A) for X ~ Gamma(k, rate) with integer shapes, exactly.

    P(X_B > x) = Σ_{k<k_B} e^(−n_B·x)·(n_B·x)^k / k!; integrating against X_A's density
    gives Σ_{k<k_B} C(k + k_A − 1, k)·p^(k_A)·(1 − p)^k with p = n_A / (n_A + n_B).
    """
    p = Fraction(rate_a) / (Fraction(rate_a) + Fraction(rate_b))
    return sum((math.comb(k + k_a - 1, k) * p**k_a * (1 - p) ** k for k in range(k_b)), Fraction(0))


def _gamma_pair_incomplete_beta(a: GammaPosterior, b: GammaPosterior) -> float:
    """P(X_B > X_A) = I_{n_A/(n_A+n_B)}(k_A, k_B) for Gammas of any shape.

    With unit-rate G_A, G_B: X_B > X_A ⟺ G_A/(G_A + G_B) < n_A/(n_A + n_B), and
    G_A/(G_A + G_B) ~ Beta(k_A, k_B).
    """
    return float(special.betainc(a.shape, b.shape, a.rate / (a.rate + b.rate)))


def _simulate(posteriors: Mapping[str, Posterior], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    draws = []
    for p in posteriors.values():
        if isinstance(p, BetaPosterior):
            draws.append(rng.beta(p.alpha, p.beta, DRAWS))
        else:
            assert isinstance(p, GammaPosterior)
            draws.append(rng.gamma(p.shape, 1 / p.rate, DRAWS))
    return np.array(draws)


BETA_PAIRS = [
    ((3, 1), (2, 3)),  # the reference funnel: control [2, 2], test [3, 1]
    ((101, 901), (131, 871)),
    ((1, 1), (1, 1)),
    ((2, 3), (100001, 6)),  # far apart: P ≈ 1
    ((100001, 6), (100001, 8)),  # both within 1e-4 of 1
    ((1, 100001), (3, 100001)),  # both within 1e-4 of 0
    ((301, 301), (301, 290)),
]


@pytest.mark.parametrize(("a", "b"), BETA_PAIRS)
def test_two_betas_match_evan_millers_closed_form(a: tuple[int, int], b: tuple[int, int]) -> None:
    exact = float(_miller_beta(*a, *b))
    probabilities = probability_to_be_best({"a": BetaPosterior(*a), "b": BetaPosterior(*b)})
    assert probabilities["b"] == pytest.approx(exact, abs=1e-11)
    assert probabilities["a"] == pytest.approx(1 - exact, abs=1e-11)


def test_reference_funnel_probability_is_four_thirty_fifths() -> None:
    assert _miller_beta(3, 1, 2, 3) == Fraction(4, 35)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((5, 1.0), (6, 0.5)),
        ((1, 1.0), (1, 3.0)),
        ((3, 1000.0), (4, 1000.0)),
        ((40, 0.25), (37, 0.2)),
    ],
)
def test_two_gammas_with_integer_shapes_match_the_finite_sum(
    a: tuple[int, float], b: tuple[int, float]
) -> None:
    exact = float(_gamma_pair_sum(*a, *b))
    probabilities = probability_to_be_best({"a": GammaPosterior(*a), "b": GammaPosterior(*b)})
    assert probabilities["b"] == pytest.approx(exact, abs=1e-11)
    assert _gamma_pair_incomplete_beta(GammaPosterior(*a), GammaPosterior(*b)) == pytest.approx(
        exact, abs=1e-13
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (GammaPosterior(1e6, 1), GammaPosterior(1e6 + 1500, 1)),
        (GammaPosterior(1, 1e-6), GammaPosterior(1e6, 1)),  # very different scales
        (GammaPosterior(1e10, 1), GammaPosterior(1e10 + 2e5, 1)),
        (GammaPosterior(20.5, 1), GammaPosterior(25.3, 1.2)),
        (GammaPosterior(1e8, 3), GammaPosterior(1e8, 2.9997)),
    ],
    ids=repr,
)
def test_two_gammas_of_any_shape_match_the_incomplete_beta_identity(
    a: GammaPosterior, b: GammaPosterior
) -> None:
    probabilities = probability_to_be_best({"a": a, "b": b})
    assert probabilities["b"] == pytest.approx(_gamma_pair_incomplete_beta(a, b), abs=1e-11)


@pytest.mark.parametrize("k", range(2, 9))
@pytest.mark.parametrize(
    "posterior", [BetaPosterior(1, 1), BetaPosterior(51, 951), GammaPosterior(1e6, 2)], ids=repr
)
def test_identical_posteriors_are_each_best_with_probability_one_over_k(
    k: int, posterior: Posterior
) -> None:
    probabilities = probability_to_be_best({f"v{i}": posterior for i in range(k)})
    assert list(probabilities.values()) == pytest.approx([1 / k] * k, abs=1e-12)


MULTI_VARIANT_CASES = {
    "beta_2": {"control": BetaPosterior(101, 901), "a": BetaPosterior(121, 881)},
    "beta_3": {
        "control": BetaPosterior(101, 901),
        "a": BetaPosterior(121, 881),
        "b": BetaPosterior(3, 20),
    },
    "beta_4": {
        "control": BetaPosterior(101, 901),
        "a": BetaPosterior(121, 881),
        "b": BetaPosterior(91, 911),
        "c": BetaPosterior(13, 90),
    },
    "gamma_2": {"control": GammaPosterior(5, 1), "a": GammaPosterior(6, 0.5)},
    "gamma_3": {
        "control": GammaPosterior(1001, 1),
        "a": GammaPosterior(1101, 1.02),
        "b": GammaPosterior(40, 0.05),
    },
    "gamma_4": {
        "control": GammaPosterior(1001, 1),
        "a": GammaPosterior(1101, 1.02),
        "b": GammaPosterior(901, 0.98),
        "c": GammaPosterior(1050, 1),
    },
}


@pytest.mark.parametrize("name", MULTI_VARIANT_CASES)
def test_probabilities_and_expected_losses_match_monte_carlo(name: str) -> None:
    """Seeded simulation; the loss tolerance is six standard errors of its sample mean."""
    posteriors = MULTI_VARIANT_CASES[name]
    draws = _simulate(posteriors, seed=20_251_123)
    winners = np.bincount(np.argmax(draws, axis=0), minlength=len(posteriors)) / DRAWS
    probabilities = probability_to_be_best(posteriors)
    assert list(probabilities.values()) == pytest.approx(winners, abs=MC_PROBABILITY_TOLERANCE)
    for i, key in enumerate(posteriors):
        others = np.max(np.delete(draws, i, axis=0), axis=0)
        shortfall = np.maximum(others - draws[i], 0)
        standard_error = shortfall.std() / math.sqrt(DRAWS)
        assert expected_loss(posteriors, key) == pytest.approx(
            shortfall.mean(), abs=6 * standard_error
        )


@pytest.mark.parametrize("posterior", [BetaPosterior(3, 5), BetaPosterior(31, 71)], ids=repr)
def test_expected_loss_of_two_identical_betas_matches_a_double_integral(
    posterior: BetaPosterior,
) -> None:
    def shortfall(x: float, y: float) -> float:  # dblquad passes the inner variable first
        return (y - x) * float(posterior.pdf(x)[()]) * float(posterior.pdf(y)[()])

    # E[max(Y − X, 0)]: y outer on [0, 1], x inner on [0, y].
    direct, _ = integrate.dblquad(shortfall, 0, 1, 0, lambda y: y, epsabs=1e-13, epsrel=1e-11)
    loss = expected_loss({"x": posterior, "y": posterior}, "x")
    assert loss == pytest.approx(direct, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (BetaPosterior(100001, 6), BetaPosterior(100001, 8)),
        (BetaPosterior(2, 3), BetaPosterior(100001, 6)),
        (BetaPosterior(1, 100001), BetaPosterior(3, 100001)),
        (GammaPosterior(1e6, 1), GammaPosterior(1e6 + 1500, 1)),
        (GammaPosterior(1, 1e-6), GammaPosterior(1e6, 1)),
        (GammaPosterior(1e10, 3), GammaPosterior(1e10 + 1e5, 3)),
    ],
    ids=repr,
)
def test_losses_of_a_pair_differ_by_the_difference_of_means(a: Posterior, b: Posterior) -> None:
    """(B − A)⁺ − (A − B)⁺ = B − A, so the two losses differ by exactly E[B] − E[A]."""
    posteriors = {"a": a, "b": b}
    difference = expected_loss(posteriors, "a") - expected_loss(posteriors, "b")
    scale = max(a.mean, b.mean)
    assert difference == pytest.approx(b.mean - a.mean, abs=1e-12 * scale)


def test_extreme_mixture_of_scales_is_consistent_and_sums_to_one() -> None:
    posteriors = {
        "narrow_high": BetaPosterior(100001, 6),
        "wide": BetaPosterior(2, 3),
        "narrow_higher": BetaPosterior(100001, 5),
        "flat": BetaPosterior(1, 1),
        "narrow_low": BetaPosterior(6, 100001),
    }
    probabilities = probability_to_be_best(posteriors)
    assert math.fsum(probabilities.values()) == pytest.approx(1, abs=1e-12)
    # Only narrow_high and flat compete with narrow_higher (C): the others exceed 0.999 with
    # probability under 1e-11. With U uniform, P(C > A, C > U) = E[X_C·1{X_C > X_A}]
    # = E[X_C]·P(C' > A), where C' ~ Beta(α_C + 1, β_C) has density x·f_C(x) / E[X_C].
    exact = Fraction(100001, 100006) * _miller_beta(100001, 6, 100002, 5)
    assert probabilities["narrow_higher"] == pytest.approx(float(exact), abs=1e-10)
    assert probabilities["narrow_low"] < 1e-100


def test_probabilities_sum_to_one_and_are_bit_identical_between_calls() -> None:
    posteriors = MULTI_VARIANT_CASES["beta_4"]
    first = probability_to_be_best(posteriors)
    assert math.fsum(first.values()) == pytest.approx(1, abs=1e-15)
    assert probability_to_be_best(posteriors) == first
    assert expected_loss(posteriors, "a") == expected_loss(posteriors, "a")


def test_results_are_identical_in_a_fresh_interpreter() -> None:
    posteriors = MULTI_VARIANT_CASES["gamma_4"]
    here = [v.hex() for v in probability_to_be_best(posteriors).values()]
    here.append(expected_loss(posteriors, "c").hex())
    code = (
        "from exp_pipeline.stats.best import expected_loss, probability_to_be_best\n"
        "from exp_pipeline.stats.posteriors import GammaPosterior as G\n"
        "p = {'control': G(1001, 1), 'a': G(1101, 1.02), 'b': G(901, 0.98), 'c': G(1050, 1)}\n"
        "print(' '.join([v.hex() for v in probability_to_be_best(p).values()]"
        " + [expected_loss(p, 'c').hex()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == here


def test_a_bad_integral_raises_instead_of_being_normalised_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rule = best.gauss_legendre_rule

    def lossy_rule(*args: Any) -> tuple[np.ndarray, np.ndarray]:
        nodes, weights = rule(*args)
        return nodes, weights * (1 - 2e-6)

    monkeypatch.setattr(best, "gauss_legendre_rule", lossy_rule)
    with pytest.raises(IntegrationError, match=r"add up to 0\.99999"):
        probability_to_be_best({"a": BetaPosterior(3, 1), "b": BetaPosterior(2, 3)})


def test_invalid_requests_are_value_errors() -> None:
    with pytest.raises(ValueError, match="at least two posteriors"):
        probability_to_be_best({"a": BetaPosterior(1, 1)})
    with pytest.raises(ValueError, match="'c' is not among"):
        expected_loss({"a": BetaPosterior(1, 1), "b": BetaPosterior(1, 1)}, "c")
