"""Credible intervals of each variant and of its lift over control.

Intervals are equal-tailed: the central `level` of the posterior, which is what PostHog
shows and what an analyst reads as "95% sure the value lies here".

Lift is X_variant / X_control − 1. For Gamma posteriors its distribution is known in
closed form: X·b ~ Gamma(a, 1), and a ratio of independent unit-rate Gammas is Beta-prime,
so (X_t·b_t) / (X_c·b_c) ~ BetaPrime(a_t, a_c). A ratio of Betas has no usable closed
form, so its distribution function P(X_t / X_c ≤ r) = ∫ f_c(y) F_t(r·y) dy is integrated
by quadrature and inverted by Brent's method on log r (uniform relative precision whether
the ratio is 1e-4 or 1e4). Both are deterministic. Normal posteriors (continuous and
ratio metrics) have the ratio's quantiles in closed form (Fieller's roots, see
`normal_posterior`).
"""

from __future__ import annotations

import math

from scipy import optimize, stats

from exp_pipeline.stats.normal_posterior import NormalPosterior, normal_lift_interval
from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior, Posterior
from exp_pipeline.stats.quadrature import (
    gauss_legendre_rule,
    integration_range,
    quantile_breaks,
    weighted_sum,
)

CREDIBLE_LEVEL = 0.95
# Brent's method stops within this fraction of its bracket, which spans a few standard
# deviations of log r: the bound's tail probability is then exact to about 1e-12 however
# narrow the ratio's distribution (a fixed tolerance in log r would not be).
_BRACKET_TOLERANCE = 1e-12


def _tail(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"credible level must be strictly between 0 and 1, got {level}")
    return (1 - level) / 2


def credible_interval(posterior: Posterior, level: float = CREDIBLE_LEVEL) -> tuple[float, float]:
    """Equal-tailed credible interval of the posterior: its (1 ± level) / 2 quantiles."""
    tail = _tail(level)
    lower, upper = posterior.ppf([tail, 1 - tail])
    return float(lower), float(upper)


class _Ratio:
    """Distribution of X_numerator / X_denominator, with the break points computed once.

    Quantile inversion evaluates the distribution function about ten times; the break
    points (incomplete-beta inversions) do not depend on the ratio.
    """

    def __init__(self, numerator: Posterior, denominator: Posterior) -> None:
        self.numerator = numerator
        self.denominator = denominator
        self.numerator_breaks = quantile_breaks(numerator)
        self.denominator_breaks = quantile_breaks(denominator)
        self.lower, self.upper = integration_range(denominator)

    def cdf(self, ratio: float) -> float:
        """P(X_numerator ≤ ratio·X_denominator), integrating over the denominator.

        The numerator's break points divided by the ratio are where F_numerator(ratio·y)
        changes, so they are added to the denominator's to resolve a narrow numerator.
        """
        if ratio <= 0:
            return 0.0
        nodes, weights = gauss_legendre_rule(
            [self.denominator_breaks, self.numerator_breaks / ratio], self.lower, self.upper
        )
        integrand = self.denominator.pdf(nodes) * self.numerator.cdf(ratio * nodes)
        return weighted_sum(integrand, weights)

    def log_ppf(self, q: float) -> float:
        """log of the ratio whose distribution function is q, by Brent's method.

        The bracket comes from union bounds and needs no search (subscripts are quantiles):
        N/D ≤ N_(q/2) / D_(1−q/2) requires N ≤ N_(q/2) or D ≥ D_(1−q/2), so the
        distribution function there is at most q; likewise N/D > N_((1+q)/2) / D_((1−q)/2)
        has probability at most 1 − q, so there it is at least q.
        """
        n, d = self.numerator, self.denominator
        low = math.log(n.ppf(q / 2) / d.isf(q / 2))
        high = math.log(n.isf((1 - q) / 2) / d.ppf((1 - q) / 2))
        return optimize.brentq(
            lambda u: self.cdf(math.exp(u)) - q,
            low,
            high,
            xtol=_BRACKET_TOLERANCE * (high - low),
        )


def ratio_cdf(numerator: Posterior, denominator: Posterior, ratio: float) -> float:
    """P(X_numerator / X_denominator ≤ ratio) for independent posteriors, by quadrature."""
    return _Ratio(numerator, denominator).cdf(ratio)


def lift_interval(
    variant: Posterior, control: Posterior, level: float = CREDIBLE_LEVEL
) -> tuple[float, float]:
    """Equal-tailed credible interval of X_variant / X_control − 1.

    Closed form (Beta-prime) for Gamma posteriors, Fieller's roots for Normal ones (NaN
    when control's posterior does not clear zero), quadrature and root finding for Beta
    posteriors; the two must be of the same family, since a lift across a conversion rate
    and an event rate means nothing.
    """
    tail = _tail(level)
    if isinstance(variant, NormalPosterior) and isinstance(control, NormalPosterior):
        return normal_lift_interval(variant, control, tail)
    if isinstance(variant, GammaPosterior) and isinstance(control, GammaPosterior):
        scale = control.rate / variant.rate
        lower, upper = stats.betaprime.ppf([tail, 1 - tail], variant.shape, control.shape)
        return float(scale * lower - 1), float(scale * upper - 1)
    if isinstance(variant, BetaPosterior) and isinstance(control, BetaPosterior):
        ratio = _Ratio(variant, control)
        # expm1 keeps the digits of lifts near 0, which exp(u) − 1 would round away.
        return math.expm1(ratio.log_ppf(tail)), math.expm1(ratio.log_ppf(1 - tail))
    raise ValueError(
        f"lift needs two Beta or two Gamma posteriors (or two Normal ones), got "
        f"{type(variant).__name__} and {type(control).__name__}"
    )
