"""Overdispersion of count metrics: is the Poisson model of a trend's Gamma posterior honest?

The trend posterior Gamma(1 + count, exposure) is the Poisson model's: it assumes every
subject produces events at one common rate, so the variance of a subject's count equals
its mean. Real counts are clumpier (a few power users produce most page views), the
variance is well above the mean, and the Poisson posterior is too narrow: it claims
certainty the data do not have and declares winners too early.

The test is the dispersion-index (Pearson) test, pooled over variants as in a quasi-
Poisson model: with per-subject counts x and each variant's mean x̄_v,

    X² = Σ_v Σ_i (x_i − x̄_v)² / x̄_v  ~  χ²(N − k) under the Poisson model,

N subjects and k variants. φ = X² / (N − k) estimates the dispersion (1 for Poisson).
Only the sufficient statistics are needed: Σ(x − x̄)² = Σx² − n x̄² per variant.

When X² is significantly above N − k (one-sided, `OVERDISPERSION_ALPHA`), each Gamma
posterior is widened to Gamma(shape / φ, rate / φ): the same mean, φ times the variance.
That is the quasi-Poisson correction (a Poisson likelihood raised to the power 1/φ), the
variance a negative-binomial model would give to a total of φ times Poisson variance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scipy import special

from exp_pipeline.stats.inputs import StatsInputError
from exp_pipeline.stats.means import MeanSummary
from exp_pipeline.stats.posteriors import GammaPosterior

OVERDISPERSION_ALPHA = 0.01


@dataclass(frozen=True)
class Dispersion:
    """The pooled dispersion test: φ, X², its degrees of freedom and one-sided p-value.

    `overdispersed` is True when p < `OVERDISPERSION_ALPHA` and φ > 1; the factor by
    which posteriors are widened, `widening`, is then φ, else 1.
    """

    phi: float
    statistic: float
    df: float
    p_value: float
    overdispersed: bool

    @property
    def widening(self) -> float:
        return self.phi if self.overdispersed else 1.0


def dispersion_test(
    counts: Mapping[str, MeanSummary], alpha: float = OVERDISPERSION_ALPHA
) -> Dispersion:
    """The dispersion test of per-subject counts summarised per variant (n, mean, s²).

    A variant without any event (mean 0) has no Poisson variance to compare with: it is
    left out, subjects and all (its counts are all 0, exactly what a rate of 0 gives).
    """
    informative = {key: s for key, s in counts.items() if s.mean > 0}
    if any(s.mean < 0 or s.variance < 0 for s in counts.values()):
        raise StatsInputError("counts cannot have a negative mean or variance")
    df = sum(s.n - 1 for s in informative.values())
    if df <= 0:
        raise StatsInputError("the dispersion test needs at least two subjects with events")
    statistic = sum((s.n - 1) * s.variance / s.mean for s in informative.values())
    phi = statistic / df
    p_value = float(special.chdtrc(df, statistic))  # χ² upper tail, as scipy.stats.chi2.sf
    return Dispersion(
        phi=phi,
        statistic=statistic,
        df=df,
        p_value=p_value,
        overdispersed=bool(p_value < alpha and phi > 1),
    )


def widened(posterior: GammaPosterior, factor: float) -> GammaPosterior:
    """Gamma(shape / factor, rate / factor): the same mean, `factor` times the variance."""
    if factor == 1:
        return posterior
    return GammaPosterior(shape=posterior.shape / factor, rate=posterior.rate / factor)
