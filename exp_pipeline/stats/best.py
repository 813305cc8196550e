"""Probability that each variant is best, and the expected loss of choosing one.

Both are exact one-dimensional integrals over independent posteriors, evaluated by the
quantile-split Gauss-Legendre rule of `quadrature`, for any number of variants:

* P(X_i is the largest) = ∫ f_i(x) ∏_{j≠i} F_j(x) dx.
* E[max(max_{j≠i} X_j − X_i, 0)] = ∫ F_i(m) (1 − G(m)) dm, where G = ∏_{j≠i} F_j is the
  distribution function of the best of the others. (Write (M − X)⁺ = ∫ 1{X ≤ m < M} dm
  and take expectations.)

Monte Carlo (PostHog draws 100,000 samples) would make the reported probability move
between two runs on the same data, which an analyst reads as the data having changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from exp_pipeline.stats.posteriors import Posterior
from exp_pipeline.stats.quadrature import (
    IntegrationError,
    gauss_legendre_rule,
    quantile_breaks,
    thinned_breaks,
    weighted_sum,
)

# The probabilities of being best must add up to 1; a larger gap means the quadrature
# missed mass and no number it produced can be trusted.
PROBABILITY_SUM_TOLERANCE = 1e-6


def _shared_rule(
    posteriors: Sequence[Posterior],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One rule resolving every posterior, covering all of their ranges."""
    if len(posteriors) < 2:
        raise ValueError(f"comparing variants needs at least two posteriors, got {len(posteriors)}")
    # Each posterior's first and last breaks are its integration range.
    breaks = [quantile_breaks(p) for p in posteriors]
    lower, upper = min(float(b[0]) for b in breaks), max(float(b[-1]) for b in breaks)
    return gauss_legendre_rule([thinned_breaks(breaks, lower, upper)], lower, upper)


def _others(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row i: the product of every row but i, from prefix and suffix products.

    k rows cost 3k products instead of k², and no division, so a distribution function
    of exactly 0 leaves the others' products intact.
    """
    ones = np.ones((1, values.shape[1]))
    before = np.cumprod(np.vstack([ones, values[:-1]]), axis=0)
    after = np.cumprod(np.vstack([ones, values[:0:-1]]), axis=0)[::-1]
    return before * after


def probability_to_be_best(posteriors: Mapping[str, Posterior]) -> dict[str, float]:
    """P(variant's value is the largest) per variant key, summing to 1.

    Raises `IntegrationError` if the raw integrals do not add up to 1 within 1e-6 instead
    of normalising the error away; within that, they are rescaled to sum to 1 exactly.
    """
    variants = list(posteriors.values())
    nodes, weights = _shared_rule(variants)
    others = _others(np.array([p.cdf(nodes) for p in variants]))
    raw = [weighted_sum(p.pdf(nodes) * o, weights) for p, o in zip(variants, others, strict=True)]
    total = math.fsum(raw)
    if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise IntegrationError(
            f"probabilities to be best add up to {total!r}, not 1, for posteriors {posteriors}"
        )
    return {key: value / total for key, value in zip(posteriors, raw, strict=True)}


def expected_loss(posteriors: Mapping[str, Posterior], chosen: str) -> float:
    """Expected shortfall of `chosen` against the best of the other variants.

    In the posteriors' units: absolute conversion rate for Beta posteriors, events per
    control-sized audience for Gamma posteriors.
    """
    if chosen not in posteriors:
        raise ValueError(f"variant {chosen!r} is not among {list(posteriors)}")
    nodes, weights = _shared_rule(list(posteriors.values()))
    # 1 − G from the upper tails: exact where G is within rounding of 1, which is where a
    # small loss of a clearly winning variant comes from.
    with np.errstate(divide="ignore"):
        log_g = sum(np.log1p(-p.sf(nodes)) for key, p in posteriors.items() if key != chosen)
    others_exceed = -np.expm1(log_g)
    return weighted_sum(posteriors[chosen].cdf(nodes) * others_exceed, weights)
