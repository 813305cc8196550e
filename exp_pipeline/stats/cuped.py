"""CUPED: variance reduction with each subject's pre-exposure value of the same metric.

Deng, Xu, Kohavi and Walker ("Improving the sensitivity of online controlled experiments
by utilizing pre-experiment data", 2013). A subject who spent a lot before the experiment
tends to spend a lot during it; that part of the spread has nothing to do with the
variant, and subtracting it makes the comparison sharper. With y the metric and x the
pre-exposure value (over a lookback before first exposure, 0 for subjects not seen then):

    y_adj = y − θ (x − x̄),   θ = pooled within-variant Cov(y, x) / Var(x),

and x̄ the mean of x over all subjects. Because x is measured before exposure the variants
share its distribution, so every variant's mean shifts by the same amount in expectation
and the estimate of the effect stays unbiased, while each variance falls from Var(y) to
Var(y) − 2θ Cov(y, x) + θ² Var(x), by the share ρ² when θ is the variant's own slope.

θ is pooled within variants (the common slope of an analysis of covariance) rather than
over all subjects: the two agree in expectation, and the pooled-within estimate does not
absorb any difference between the variants' means of y. The adjusted difference of means
is then exactly the treatment coefficient of the least-squares fit y ~ variant + x.
Everything comes from per-variant sufficient statistics (n, Σy, Σy², Σx, Σx², Σxy),
which a warehouse query returns without moving any subject's row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exp_pipeline.stats.frequentist import check_real
from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.means import MeanSummary


@dataclass(frozen=True)
class CupedSums:
    """One variant's metric and covariate summaries and their sample covariance (ddof 1)."""

    metric: MeanSummary
    covariate: MeanSummary
    covariance: float

    @classmethod
    def from_sums(
        cls,
        n: float,
        sum_y: float,
        sum_y2: float,
        sum_x: float,
        sum_x2: float,
        sum_xy: float,
    ) -> CupedSums:
        """From the sums over n subjects of y (metric), x (pre-exposure value) and x·y."""
        metric = MeanSummary.from_sums(n, sum_y, sum_y2)
        covariate = MeanSummary.from_sums(n, sum_x, sum_x2)
        sum_xy = check_real(sum_xy, "sum of cross products")
        covariance = (sum_xy - metric.n * metric.mean * covariate.mean) / (metric.n - 1)
        return cls(metric=metric, covariate=covariate, covariance=covariance)


@dataclass(frozen=True)
class CupedResult:
    """Adjusted summaries per variant (for Welch and the posteriors), θ and the reduction.

    `variance_reduction` is 1 − Var(y_adj) / Var(y) pooled over variants, per variant in
    `variance_reductions`: 0.3 means the adjusted metric needs 30% fewer subjects for the
    same precision.
    """

    theta: float
    covariate_mean: float
    adjusted: Mapping[str, MeanSummary]
    variance_reduction: float
    variance_reductions: Mapping[str, float]


def cuped_adjust(variants: Mapping[str, CupedSums]) -> CupedResult:
    """θ pooled within variants, then each variant's adjusted mean and variance."""
    if not variants:
        raise StatsInputError("CUPED needs at least one variant")
    weights = {key: v.metric.n - 1 for key, v in variants.items()}
    covariate_ss = sum(weights[key] * v.covariate.variance for key, v in variants.items())
    cross = sum(weights[key] * v.covariance for key, v in variants.items())
    # No spread in the pre-exposure values (say nobody was seen before): nothing to use.
    theta = cross / covariate_ss if covariate_ss > 0 else 0.0
    subjects = sum(v.metric.n for v in variants.values())
    covariate_mean = sum(v.metric.n * v.covariate.mean for v in variants.values()) / subjects
    adjusted = {}
    reductions = {}
    for key, v in variants.items():
        variance = max(
            v.metric.variance - 2 * theta * v.covariance + theta**2 * v.covariate.variance, 0.0
        )
        adjusted[key] = MeanSummary(
            n=v.metric.n,
            mean=v.metric.mean - theta * (v.covariate.mean - covariate_mean),
            variance=variance,
        )
        reductions[key] = 1 - variance / v.metric.variance if v.metric.variance > 0 else 0.0
    raw = sum(weights[key] * v.metric.variance for key, v in variants.items())
    kept = sum(weights[key] * adjusted[key].variance for key in variants)
    return CupedResult(
        theta=theta,
        covariate_mean=covariate_mean,
        adjusted=adjusted,
        variance_reduction=1 - kept / raw if raw > 0 else 0.0,
        variance_reductions=reductions,
    )
