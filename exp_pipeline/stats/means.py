"""Welch t-test of a continuous metric (say revenue per exposed subject) from summaries.

Why Welch and not Student: variants routinely differ in spread (a treatment that raises
order values also widens them) and in size, and Student's pooled variance then gives the
wrong false-positive rate; Welch's test does not assume equal variances and costs nothing
when they are equal.

Why summaries: the metric tables reduce each variant to (n, mean, sample variance with
ddof = 1), which is all the test needs: SE² = s_c²/n_c + s_t²/n_t, and the
Welch–Satterthwaite degrees of freedom

    df = SE⁴ / ((s_c²/n_c)² / (n_c − 1) + (s_t²/n_t)² / (n_t − 1)).

The interval of the difference uses the t quantile with those df, as does the relative
interval (linear delta method on mean_t / mean_c, since means can be zero or negative), so
both intervals narrow to the normal ones as samples grow.
"""

from __future__ import annotations

import math
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

WELCH_T = "welch_t"


@dataclass(frozen=True)
class MeanSummary:
    """One variant of a continuous metric: subjects, mean, sample variance (ddof = 1)."""

    n: float
    mean: float
    variance: float

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> MeanSummary:
        """Summary of per-subject values (winsorise them first if the metric is capped)."""
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise StatsInputError(f"values must be one-dimensional, got shape {array.shape}")
        if array.size < 2:
            raise StatsInputError(
                f"at least 2 values are needed to estimate a variance, got {array.size}"
            )
        if not np.isfinite(array).all():
            raise StatsInputError("values must all be finite (no NaN or infinity)")
        return cls(n=array.size, mean=float(array.mean()), variance=float(array.var(ddof=1)))

    @classmethod
    def from_sums(
        cls, n: float, total: float, total_squares: float, variant: str = "variant"
    ) -> MeanSummary:
        """Summary from the sufficient statistics n, Σy and Σy² a warehouse query returns.

        s² = (Σy² − n ȳ²) / (n − 1), clipped at 0 against rounding. The subtraction costs
        about log10(1 + ȳ²/s²) digits: nothing that matters for metrics whose spread is
        not tiny against their mean, which is what revenue-like metrics look like.
        """
        n = check_subjects(n, f"{variant} n", minimum=2)
        total = check_real(total, f"{variant} sum")
        total_squares = check_real(total_squares, f"{variant} sum of squares")
        mean = total / n
        return cls(n=n, mean=mean, variance=max(total_squares - n * mean**2, 0.0) / (n - 1))


def checked_summary(summary: MeanSummary, variant: str) -> tuple[float, float, float]:
    """Validated (n, mean, variance) of one variant."""
    if not isinstance(summary, MeanSummary):
        raise StatsInputError(f"{variant} must be a MeanSummary, got {summary!r}")
    n = check_subjects(summary.n, f"{variant} n", minimum=2)
    mean = check_real(summary.mean, f"{variant} mean")
    variance = check_real(summary.variance, f"{variant} variance")
    if variance < 0:
        raise StatsInputError(f"{variant} variance must be non-negative, got {summary.variance!r}")
    return n, mean, variance


def welch_degrees_of_freedom(
    control_n: float, control_variance: float, treatment_n: float, treatment_variance: float
) -> float:
    """Welch–Satterthwaite df; NaN when both variances are 0 (nothing to estimate)."""
    a, b = control_variance / control_n, treatment_variance / treatment_n
    denominator = a**2 / (control_n - 1) + b**2 / (treatment_n - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else math.nan


def welch_t_test(
    control: MeanSummary, treatment: MeanSummary, *, level: float = CONFIDENCE_LEVEL
) -> FrequentistResult:
    """Two-sided Welch t-test of mean_treatment = mean_control, with lift intervals.

    Each variant needs n ≥ 2 and a non-negative variance. When both variances are 0 the
    test is undefined and statistic, p-value, df and intervals are NaN; the relative
    lift is NaN when the control mean is 0.
    """
    level = check_level(level)
    n_c, mean_c, var_c = checked_summary(control, "control")
    n_t, mean_t, var_t = checked_summary(treatment, "treatment")
    df = welch_degrees_of_freedom(n_c, var_c, n_t, var_t)
    return difference_result(WELCH_T, mean_c, mean_t, var_c / n_c, var_t / n_t, df=df, level=level)
