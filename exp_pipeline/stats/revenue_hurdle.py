"""Revenue per subject with a hurdle model: P(converts) times a log-normal order value.

Revenue is zero for most subjects and heavy-tailed for the rest, so neither a normal
model nor a plain mean test describes it well. The hurdle splits it, per variant:

    conversion       ~ Beta(1, 1)                      the funnel convention's prior
    converters       ~ Binomial(subjects, conversion)
    log order value  ~ Normal(mu, sigma)               for each converter
    p(mu, sigma)     ∝ 1 / sigma                       Jeffreys' prior

and reports the revenue per subject, conversion · exp(mu + sigma² / 2) (the mean of the
zero-inflated log-normal), its lift over control and the probability that it beats
control's.

No raw rows are needed: the log-normal part depends on the converters' log values only
through m (the converters), Σ log v and Σ (log v)², which the engine computes per variant:

    SELECT variant, count(*) AS subjects, count(*) FILTER (WHERE revenue > 0) AS converters,
           coalesce(sum(ln(revenue)) FILTER (WHERE revenue > 0), 0) AS log_value_sum,
           coalesce(sum(ln(revenue) ^ 2) FILTER (WHERE revenue > 0), 0)
               AS log_value_sum_squares
    FROM revenue_per_subject GROUP BY variant

With ȳ the mean and S = Σ (log v − ȳ)² the spread of the log values, the normal
likelihood factors exactly into ȳ ~ Normal(mu, sigma / √m) and S ~ sigma² χ²(m − 1), i.e.
S ~ Gamma(shape (m − 1) / 2, rate 1 / (2 sigma²)), which is how the model observes them.

Each part alone is conjugate (conversion ~ Beta(1 + k, 1 + n − k); sigma² ~ Inv-Gamma
((m − 1) / 2, S / 2) and mu ~ t(m − 1, ȳ, √(S / (m − 1) / m))), which is what the tests
check the sampler against; revenue per subject, a product of the two, has no closed
form. Its posterior mean is, strictly, infinite (an Inv-Gamma sigma² gives exp(sigma² / 2)
no finite mean), so the reported mean is that of the draws, reliable only when sigma is
well measured; the median and the interval are always sound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from exp_pipeline.stats.inputs import StatsInputError, ordered_variants
from exp_pipeline.stats.intervals import CREDIBLE_LEVEL
from exp_pipeline.stats.results import CONTROL_VARIANT
from exp_pipeline.stats.sampling import (
    ParameterSummary,
    SampledResult,
    SamplingSettings,
    binomial_count,
    sample_posterior,
)

MODEL_NAME = "revenue_hurdle"
# A spread of log values this small relative to their squares is rounding, not data.
_RELATIVE_SPREAD_FLOOR = 1e-12


@dataclass(frozen=True)
class RevenueAggregates:
    """One variant's sufficient statistics (see the module's SQL).

    `converters` are the subjects with positive revenue; the log sums run over them.
    """

    subjects: int
    converters: int
    log_value_sum: float
    log_value_sum_squares: float

    @property
    def log_value_mean(self) -> float:
        return self.log_value_sum / self.converters

    @property
    def log_value_spread(self) -> float:
        """Σ (log v − mean)², never negative (rounding can make the difference so)."""
        return max(self.log_value_sum_squares - self.log_value_sum * self.log_value_mean, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subjects": self.subjects,
            "converters": self.converters,
            "log_value_sum": self.log_value_sum,
            "log_value_sum_squares": self.log_value_sum_squares,
        }


def _validated(variant: str, given: RevenueAggregates) -> RevenueAggregates:
    what = f"variant {variant!r}"
    subjects = binomial_count(given.subjects, f"{what} subjects")
    converters = binomial_count(given.converters, f"{what} converters")
    if converters > subjects:
        raise StatsInputError(f"{what}: {converters} converters but only {subjects} subjects")
    if converters < 2:
        raise StatsInputError(
            f"{what}: the order value needs at least 2 converters to estimate its spread, "
            f"got {converters}"
        )
    for name in ("log_value_sum", "log_value_sum_squares"):
        value = getattr(given, name)
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise StatsInputError(f"{what} {name} must be a finite number, got {value!r}")
    result = RevenueAggregates(
        subjects, converters, float(given.log_value_sum), float(given.log_value_sum_squares)
    )
    if result.log_value_spread <= _RELATIVE_SPREAD_FLOOR * max(result.log_value_sum_squares, 1):
        raise StatsInputError(
            f"{what}: the log order values do not vary (sum {given.log_value_sum!r}, sum of "
            f"squares {given.log_value_sum_squares!r} over {converters} converters): a "
            "log-normal cannot describe identical values"
        )
    return result


@dataclass(frozen=True)
class VariantRevenue:
    """One variant's hurdle posterior; `lift` and `probability_beats_control` None on control.

    `order_value` is the mean revenue of a converting subject, exp(mu + sigma² / 2);
    `revenue_per_subject` is conversion · order_value.
    """

    variant: str
    aggregates: RevenueAggregates
    conversion: ParameterSummary
    log_value_mu: ParameterSummary
    log_value_sigma: ParameterSummary
    order_value: ParameterSummary
    revenue_per_subject: ParameterSummary
    lift: ParameterSummary | None
    probability_beats_control: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "aggregates": self.aggregates.to_dict(),
            "conversion": self.conversion.to_dict(),
            "log_value_mu": self.log_value_mu.to_dict(),
            "log_value_sigma": self.log_value_sigma.to_dict(),
            "order_value": self.order_value.to_dict(),
            "revenue_per_subject": self.revenue_per_subject.to_dict(),
            "lift": self.lift.to_dict() if self.lift else None,
            "probability_beats_control": self.probability_beats_control,
        }


@dataclass(frozen=True)
class RevenueHurdleResult(SampledResult):
    """Per-variant revenue posteriors, control first, and the run's diagnostics."""

    variants: tuple[VariantRevenue, ...]

    def parts(self) -> dict[str, Any]:
        return {"variants": [v.to_dict() for v in self.variants]}


def hurdle_model(aggregates: Mapping[str, RevenueAggregates]) -> pm.Model:
    """The PyMC hurdle for every variant at once (independent), in the given order.

    Public so analysts can inspect it (prior checks, graphs); `analyse_revenue_hurdle`
    validates the aggregates before building it.
    """
    variants = list(aggregates)
    rows = list(aggregates.values())
    subjects = np.array([a.subjects for a in rows], dtype=np.int64)
    converters = np.array([a.converters for a in rows], dtype=np.int64)
    mean = np.array([a.log_value_mean for a in rows])
    spread = np.array([a.log_value_spread for a in rows])
    with pm.Model(coords={"variant": variants, "treatment": variants[1:]}) as model:
        conversion = pm.Beta("conversion", 1.0, 1.0, dims="variant")
        pm.Binomial("converters", n=subjects, p=conversion, observed=converters, dims="variant")
        # Flat in (mu, log sigma) is Jeffreys' 1 / sigma; starting at the sample estimates
        # spares the sampler a walk from 0 on dollar- or cent-sized log values.
        mu = pm.Flat("log_value_mu", dims="variant", initval=mean)
        log_sigma = pm.Flat(
            "log_value_log_sigma", dims="variant", initval=0.5 * np.log(spread / (converters - 1))
        )
        sigma = pm.Deterministic("log_value_sigma", pt.exp(log_sigma), dims="variant")
        pm.Normal("log_value_mean", mu, sigma / np.sqrt(converters), observed=mean, dims="variant")
        pm.Gamma(
            "log_value_spread",
            alpha=(converters - 1) / 2,
            beta=0.5 / sigma**2,
            observed=spread,
            dims="variant",
        )
        order_value = pm.Deterministic("order_value", pt.exp(mu + sigma**2 / 2), dims="variant")
        revenue = pm.Deterministic("revenue_per_subject", conversion * order_value, dims="variant")
        pm.Deterministic("lift", revenue[1:] / revenue[0] - 1, dims="treatment")
    return model


def analyse_revenue_hurdle(
    aggregates: Mapping[str, RevenueAggregates],
    control: str = CONTROL_VARIANT,
    settings: SamplingSettings | None = None,
    level: float = CREDIBLE_LEVEL,
) -> RevenueHurdleResult:
    """Hurdle posteriors of revenue per subject from each variant's sufficient statistics.

    Every variant needs at least two converters with distinct values. Raises
    `ConvergenceError` when the chains did not converge.
    """
    settings = settings or SamplingSettings()
    order = ordered_variants(list(aggregates), control)
    validated = {key: _validated(key, aggregates[key]) for key in order}
    var_names = [
        "conversion",
        "log_value_mu",
        "log_value_sigma",
        "order_value",
        "revenue_per_subject",
        "lift",
    ]
    sampled = sample_posterior(hurdle_model(validated), MODEL_NAME, var_names, settings, level)
    lift_draws = sampled.posterior["lift"]

    def variant_result(key: str) -> VariantRevenue:
        def summary(name: str) -> ParameterSummary:
            return sampled.summary(f"{name}[{key}]")

        is_control = key == control
        return VariantRevenue(
            variant=key,
            aggregates=validated[key],
            conversion=summary("conversion"),
            log_value_mu=summary("log_value_mu"),
            log_value_sigma=summary("log_value_sigma"),
            order_value=summary("order_value"),
            revenue_per_subject=summary("revenue_per_subject"),
            lift=None if is_control else summary("lift"),
            probability_beats_control=(
                None if is_control else float((lift_draws.sel(treatment=key) > 0).mean())
            ),
        )

    return RevenueHurdleResult(
        control=control,
        variants=tuple(variant_result(key) for key in order),
        settings=settings,
        diagnostics=sampled.diagnostics,
    )
