"""Holm–Bonferroni adjustment of the p-values of an experiment's secondary metrics.

Why Holm: an experiment reports several secondary metrics, and at 5% each, five unrelated
metrics give at least one false "significant" result about 23% of the time. Holm's
step-down procedure controls that family-wise error rate at alpha under any dependence
between the metrics (no independence assumption, unlike Benjamini–Hochberg, which
controls the false discovery rate instead), and is uniformly more powerful than plain
Bonferroni.

Adjusted p-values: with the m p-values sorted ascending p₍₁₎ ≤ … ≤ p₍ₘ₎,

    p̃₍ᵢ₎ = min(1, max over j ≤ i of (m − j + 1) p₍ⱼ₎),

so "p̃ ≤ alpha" is exactly Holm's rejection at level alpha, and the adjusted values are
monotone in the raw ones. They are returned in the caller's order.

Across time as well as across comparisons: e-BH (Wang and Ramdas, "False discovery rate
control with e-values", 2022) on the always-valid e-values of every variant × metric ×
segment comparison. With the m e-values sorted descending e₍₁₎ ≥ … ≥ e₍ₘ₎ it rejects the
k* largest, k* = max{k : e₍ₖ₎ ≥ m / (alpha k)}, and controls the false discovery rate at
alpha under any dependence between the comparisons (a shared control arm, correlated
metrics). Its adjusted values q₍ᵢ₎ = min(1, min over k ≥ i of m / (k e₍ₖ₎)) make "q ≤
alpha" exactly e-BH's rejection at level alpha. Because e-values stay e-values at any
stopping time, the guarantee holds at whichever daily look the analyst acts on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

import numpy as np

from exp_pipeline.stats.inputs import StatsInputError


def _p_value(value: object, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise StatsInputError(f"p-value {index} must be a number, got {value!r}")
    number = float(value)
    if math.isnan(number) or not 0 <= number <= 1:
        raise StatsInputError(f"p-value {index} must be between 0 and 1, got {value!r}")
    return number


def holm_adjust(p_values: Iterable[Real]) -> list[float]:
    """Holm-adjusted p-values in the input order (an empty input gives an empty list).

    A NaN p-value (an undefined test) is refused rather than dropped: silently shrinking
    the family would make the others look more significant than they are; the caller
    decides whether an untestable metric belongs to the family.
    """
    values = np.array([_p_value(p, i) for i, p in enumerate(p_values)], dtype=np.float64)
    m = values.size
    if m == 0:
        return []
    order = np.argsort(values, kind="stable")
    multipliers = m - np.arange(m)
    stepped = np.minimum(1.0, np.maximum.accumulate(multipliers * values[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted.tolist()


def _e_value(value: object, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise StatsInputError(f"e-value {index} must be a number, got {value!r}")
    number = float(value)
    if math.isnan(number) or number < 0:
        raise StatsInputError(f"e-value {index} must be non-negative, got {value!r}")
    return number


def e_bh_adjust(e_values: Iterable[Real]) -> list[float]:
    """e-BH adjusted values in the input order; "≤ alpha" is e-BH's rejection at alpha.

    An infinite e-value (overwhelming evidence) gets 0; NaN is refused, as in
    `holm_adjust`, so an untestable comparison never silently shrinks the family.
    """
    values = np.array([_e_value(e, i) for i, e in enumerate(e_values)], dtype=np.float64)
    m = values.size
    if m == 0:
        return []
    order = np.argsort(-values, kind="stable")
    ranks = np.arange(1, m + 1)
    with np.errstate(divide="ignore"):
        thresholds = m / (ranks * values[order])
    # Minimum over k ≥ i: a running minimum from the smallest e-value upwards.
    stepped = np.minimum(1.0, np.minimum.accumulate(thresholds[::-1])[::-1])
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted.tolist()
