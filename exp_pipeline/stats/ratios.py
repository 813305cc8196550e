"""Ratio metrics (sum of x / sum of y over subjects) with delta-method variances.

A ratio metric such as revenue per order, or clicks per session, divides two sums over the
same subjects: R = Σx / Σy = x̄ / ȳ. The subject, not the order or session, is the unit
that was randomised, so the y's of one subject are not independent draws and the naive
binomial or Poisson variance of "x per y" is too small. The delta method (first-order
Taylor expansion of x̄ / ȳ around (μx, μy)) gives the variance from per-subject moments:

    Var(R) ≈ (σx² − 2 R σxy + R² σy²) / (n μy²) = Var(x − R y) / (n ȳ²).

The second form is what is computed: Σ(x − R y)² = Σx² − 2R Σxy + R² Σy² needs only the
sufficient statistics, and x − R y has mean exactly 0 at R = Σx / Σy, so no mean has to
be subtracted (one cancellation fewer). Sample moments use n − 1 (ddof = 1), so with a
constant denominator the variance is exactly that of a mean divided by the constant².

Treatment and control are compared by a z-test on R_t − R_c with SE² = Var(R_t) +
Var(R_c): the delta method is itself a large-sample approximation, so a t quantile would
add nothing. The relative lift R_t / R_c − 1 uses the linear delta method (ratios of
signed values such as net revenue may be zero or negative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from exp_pipeline.stats.frequentist import (
    CONFIDENCE_LEVEL,
    FrequentistResult,
    check_level,
    check_real,
    check_subjects,
    difference_result,
)
from exp_pipeline.stats.inputs import StatsInputError

DELTA_METHOD_RATIO_Z = "delta_method_ratio_z"

# Relative slack for the Cauchy–Schwarz consistency checks of the sums: rounding in a
# warehouse's float sums must not be mistaken for inconsistent aggregates.
_CONSISTENCY_SLACK = 1e-9


@dataclass(frozen=True)
class RatioSummary:
    """One variant's sufficient statistics over its n subjects.

    x is the per-subject numerator (say revenue), y the per-subject denominator (say
    orders); sum_x2, sum_y2 and sum_xy are Σx², Σy² and Σxy over subjects.
    """

    n: float
    sum_x: float
    sum_y: float
    sum_x2: float
    sum_y2: float
    sum_xy: float

    @classmethod
    def from_values(cls, numerators: npt.ArrayLike, denominators: npt.ArrayLike) -> RatioSummary:
        """Sufficient statistics of per-subject numerators and denominators (same order)."""
        x = np.asarray(numerators, dtype=np.float64)
        y = np.asarray(denominators, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape:
            raise StatsInputError(
                "numerators and denominators must be one-dimensional and of equal length, "
                f"got shapes {x.shape} and {y.shape}"
            )
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise StatsInputError("numerators and denominators must be finite (no NaN)")
        return cls(
            n=x.size,
            sum_x=float(x.sum()),
            sum_y=float(y.sum()),
            sum_x2=float(x @ x),
            sum_y2=float(y @ y),
            sum_xy=float(x @ y),
        )


def ratio_estimate(summary: RatioSummary, variant: str = "variant") -> tuple[float, float]:
    """(R, Var(R)) of one variant by the delta method, after validating its sums.

    Needs n ≥ 2 subjects and a positive denominator total; refuses sums that no set of
    real values could have (Σx² < (Σx)²/n or (Σxy)² > Σx² Σy²), which signal a wrong
    aggregate upstream rather than an unusual experiment.
    """
    if not isinstance(summary, RatioSummary):
        raise StatsInputError(f"{variant} must be a RatioSummary, got {summary!r}")
    n = check_subjects(summary.n, f"{variant} n", minimum=2)
    sum_x = check_real(summary.sum_x, f"{variant} sum_x")
    sum_y = check_real(summary.sum_y, f"{variant} sum_y")
    sum_x2 = check_real(summary.sum_x2, f"{variant} sum_x2")
    sum_y2 = check_real(summary.sum_y2, f"{variant} sum_y2")
    sum_xy = check_real(summary.sum_xy, f"{variant} sum_xy")
    if sum_y <= 0:
        raise StatsInputError(
            f"{variant} denominator total sum_y must be positive, got {summary.sum_y!r}"
        )
    if sum_x2 < 0 or sum_y2 < 0:
        raise StatsInputError(f"{variant} sums of squares must be non-negative")
    slack = 1 + _CONSISTENCY_SLACK
    if sum_x**2 > n * sum_x2 * slack or sum_y**2 > n * sum_y2 * slack:
        raise StatsInputError(
            f"{variant} sums are inconsistent: a sum of squares is below (sum)² / n"
        )
    if sum_xy**2 > sum_x2 * sum_y2 * slack:
        raise StatsInputError(f"{variant} sums are inconsistent: sum_xy² exceeds sum_x2 × sum_y2")

    ratio = sum_x / sum_y
    # Σ(x − R y)², clipped at 0 against rounding: it is a sum of squares.
    residual_ss = max(sum_x2 - 2 * ratio * sum_xy + ratio**2 * sum_y2, 0.0)
    mean_y = sum_y / n
    variance = residual_ss / (n - 1) / (n * mean_y**2)
    return ratio, variance


def ratio_z_test(
    control: RatioSummary, treatment: RatioSummary, *, level: float = CONFIDENCE_LEVEL
) -> FrequentistResult:
    """Two-sided delta-method z-test of R_treatment = R_control, with lift intervals.

    Statistic, p-value and intervals are NaN when neither variant's ratio varies across
    subjects (zero delta-method variance in both); the relative lift is NaN when R_c = 0.
    """
    level = check_level(level)
    ratio_c, var_c = ratio_estimate(control, "control")
    ratio_t, var_t = ratio_estimate(treatment, "treatment")
    return difference_result(
        DELTA_METHOD_RATIO_Z, ratio_c, ratio_t, var_c, var_t, df=None, level=level
    )
