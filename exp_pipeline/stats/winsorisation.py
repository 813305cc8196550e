"""Winsorisation: cap per-subject values at an upper percentile before summarising them.

Why: revenue-like metrics are heavy-tailed, and one subject with a huge order can move a
variant's mean and inflate its variance so much that a real effect is drowned (or a fake
one appears). Capping each subject's value at, say, the 99th percentile trades a small,
documented bias for a large cut in variance. Only the upper tail is capped: the metrics
this is for are bounded below (by 0), and a floor would hide refunds.

Compute the cap once on all variants pooled, then apply that same cap to every variant
(`winsorise` on the pooled values, `cap_values` per variant): caps computed per variant
would differ with the treatment effect itself and bias the comparison.

The percentile is numpy's default (linear interpolation between order statistics, as in
`numpy.percentile`), so the cap is one of the observed values or lies between two of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import numpy.typing as npt

from exp_pipeline.stats.inputs import StatsInputError

DEFAULT_WINSORISATION_PERCENTILE = 99.0


@dataclass(frozen=True, eq=False)
class Winsorised:
    """Capped values (same order as given), the cap, and how many values it changed."""

    values: npt.NDArray[np.float64]
    cap: float
    capped: int


def _finite_values(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise StatsInputError(f"values must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise StatsInputError("values must all be finite (no NaN or infinity)")
    return array


def _check_percentile(percentile: object) -> float:
    if isinstance(percentile, bool) or not isinstance(percentile, Real):
        raise StatsInputError(f"winsorisation percentile must be a number, got {percentile!r}")
    number = float(percentile)
    if not 0 < number <= 100:
        raise StatsInputError(f"winsorisation percentile must be in (0, 100], got {percentile!r}")
    return number


def cap_values(values: npt.ArrayLike, cap: float) -> npt.NDArray[np.float64]:
    """`values` with everything above `cap` replaced by `cap` (a new array)."""
    if isinstance(cap, bool) or not isinstance(cap, Real) or math.isnan(float(cap)):
        raise StatsInputError(f"winsorisation cap must be a number, got {cap!r}")
    return np.minimum(_finite_values(values), float(cap))


def winsorise(
    values: npt.ArrayLike, percentile: float = DEFAULT_WINSORISATION_PERCENTILE
) -> Winsorised:
    """Cap `values` at their `percentile`-th percentile; 100 leaves them unchanged.

    Needs at least one value: a percentile of nothing is undefined.
    """
    level = _check_percentile(percentile)
    array = _finite_values(values)
    if array.size == 0:
        raise StatsInputError("at least one value is needed to compute a winsorisation cap")
    cap = float(np.percentile(array, level))
    return Winsorised(
        values=np.minimum(array, cap), cap=cap, capped=int(np.count_nonzero(array > cap))
    )
