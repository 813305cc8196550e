"""One metric's complete Bayesian result, built from its per-variant aggregates.

`analyse_funnel`, `analyse_trend`, `analyse_continuous` and `analyse_ratio` are what the
pipeline calls: they validate the aggregates, build the posteriors (flat priors unless a
`Prior` is given), and return a small frozen `BayesianResult` holding everything an
analyst's table needs, in variant order with control first.

One answer however the lift is expressed: the probability that a variant beats control
is P(X_variant > X_control) integrated over the two posteriors themselves (the same
quadrature as the probability to be best), and the lift interval is the equal-tailed
interval of the posterior of X_variant / X_control, asymmetric as that ratio is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real

from exp_pipeline.stats.best import expected_loss, probability_to_be_best
from exp_pipeline.stats.inputs import (
    StatsInputError,
    funnel_counts,
    ordered_variants,
    trend_counts,
)
from exp_pipeline.stats.intervals import CREDIBLE_LEVEL, credible_interval, lift_interval
from exp_pipeline.stats.means import MeanSummary, checked_summary
from exp_pipeline.stats.normal_posterior import NormalPosterior, normal_posterior
from exp_pipeline.stats.overdispersion import widened
from exp_pipeline.stats.posteriors import (
    BetaPosterior,
    GammaPosterior,
    funnel_posterior,
    trend_posteriors,
)
from exp_pipeline.stats.priors import Prior
from exp_pipeline.stats.ratios import RatioSummary, ratio_estimate
from exp_pipeline.stats.significance import (
    NOT_ENOUGH_EXPOSURE_LOSS,
    MetricKind,
    SignificanceCode,
    has_enough_exposure,
    significance_code,
)

CONTROL_VARIANT = "control"

AnyPosterior = BetaPosterior | GammaPosterior | NormalPosterior


@dataclass(frozen=True)
class BayesianResult:
    """The Bayesian result of one metric; every mapping is keyed by variant, control first.

    `expected_loss` is that of `best_variant` (the variant most probably best) against the
    best of all the others, or 1.0 under `not_enough_exposure`, where it is not computed.
    `beats_control` is P(variant > control) for every variant but control (with two
    variants, the treatment's probability to be best). `significant` is derived from
    `code`, so the two can never disagree.
    """

    kind: MetricKind
    control: str
    posteriors: Mapping[str, AnyPosterior]
    probabilities: Mapping[str, float]
    best_variant: str
    expected_loss: float
    code: SignificanceCode
    credible_intervals: Mapping[str, tuple[float, float]]
    lift_intervals: Mapping[str, tuple[float, float]]
    beats_control: Mapping[str, float]
    significant: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "significant", self.code == SignificanceCode.SIGNIFICANT)


def _result(
    kind: MetricKind,
    control: str,
    posteriors: Mapping[str, AnyPosterior],
    exposed_subjects: Mapping[str, float | None],
    level: float,
    ranked: Mapping[str, AnyPosterior] | None = None,
) -> BayesianResult:
    """The result; `ranked` are the posteriors best, loss and beating control are read
    from, when "better" is not "higher" (the negated posteriors of a lower-is-better
    metric), the reported posteriors and intervals staying on the metric's own scale."""
    ranked = posteriors if ranked is None else ranked
    probabilities = probability_to_be_best(ranked)
    # On a tie the earlier variant wins, so control is preferred to an equal challenger.
    best = max(probabilities, key=probabilities.__getitem__)
    loss = (
        expected_loss(ranked, best)
        if has_enough_exposure(exposed_subjects)
        else NOT_ENOUGH_EXPOSURE_LOSS
    )
    return BayesianResult(
        kind=kind,
        control=control,
        posteriors=posteriors,
        probabilities=probabilities,
        best_variant=best,
        expected_loss=loss,
        code=significance_code(kind, exposed_subjects, probabilities, loss),
        credible_intervals={k: credible_interval(p, level) for k, p in posteriors.items()},
        lift_intervals={
            k: lift_interval(p, posteriors[control], level)
            for k, p in posteriors.items()
            if k != control
        },
        beats_control={
            k: probability_to_be_best({control: ranked[control], k: p})[k]
            for k, p in ranked.items()
            if k != control
        },
    )


def _normal_result(
    kind: MetricKind,
    control: str,
    estimates: Mapping[str, tuple[float, float, float]],
    level: float,
    prior: Prior | None,
    lower_is_better: bool,
) -> BayesianResult:
    """The result of Normal posteriors from each variant's (estimate, sampling variance,
    subjects); for a lower-is-better metric (errors, latency) the best variant is the
    lowest, i.e. the highest of the negated posteriors."""
    posteriors = {
        key: normal_posterior(estimate, variance, n, prior)
        for key, (estimate, variance, n) in estimates.items()
    }
    ranked = (
        {k: NormalPosterior(mean=-p.mean, sd=p.sd) for k, p in posteriors.items()}
        if lower_is_better
        else None
    )
    exposed = {key: n for key, (_, _, n) in estimates.items()}
    return _result(kind, control, posteriors, exposed, level, ranked)


def analyse_funnel(
    steps_by_variant: Mapping[str, Sequence[Real]],
    control: str = CONTROL_VARIANT,
    level: float = CREDIBLE_LEVEL,
    prior: Prior | None = None,
) -> BayesianResult:
    """Result of a funnel metric from each variant's subjects per step, first to last.

    `{"control": [1000, 420, 130], "test": [990, 450, 160]}`: the first count is the
    exposed subjects, the last the conversions; a one-step funnel converts everyone.
    """
    counts = funnel_counts(steps_by_variant, control)
    return _result(
        MetricKind.FUNNEL,
        control,
        {key: funnel_posterior(c, prior) for key, c in counts.items()},
        {key: c.first_step for key, c in counts.items()},
        level,
    )


def analyse_trend(
    counts: Mapping[str, Real],
    exposures: Mapping[str, Real] | None = None,
    control: str = CONTROL_VARIANT,
    level: float = CREDIBLE_LEVEL,
    prior: Prior | None = None,
    widening: float = 1.0,
) -> BayesianResult:
    """Result of a trend metric from each variant's event count and exposed subjects.

    A variant missing from `exposures` has an unknown audience: its relative exposure is
    1 and it counts as unexposed for the significance code. `widening` multiplies every
    posterior's variance at the same mean (the dispersion φ of overdispersed counts, see
    `overdispersion`); it cannot be below 1, which would claim more than Poisson certainty.
    """
    if not (math.isfinite(widening) and widening >= 1):
        raise StatsInputError(f"widening must be a finite number of at least 1, got {widening!r}")
    validated = trend_counts(counts, exposures, control)
    posteriors = trend_posteriors(validated, control, prior)
    return _result(
        MetricKind.TREND,
        control,
        {key: widened(p, widening) for key, p in posteriors.items()},
        {key: c.exposure for key, c in validated.items()},
        level,
    )


def analyse_continuous(
    summaries: Mapping[str, MeanSummary],
    control: str = CONTROL_VARIANT,
    level: float = CREDIBLE_LEVEL,
    prior: Prior | None = None,
    lower_is_better: bool = False,
) -> BayesianResult:
    """Result of a continuous metric from each variant's (n, mean, s²) per exposed subject.

    The posterior of each mean is Normal with the sampling variance s²/n (see
    `normal_posterior`); n is the exposure for the significance code. With
    `lower_is_better` the best variant, its loss and beating control mean lower values.
    """
    estimates = {}
    for key in ordered_variants(list(summaries), control):
        n, mean, variance = checked_summary(summaries[key], f"variant {key!r}")
        estimates[key] = (mean, variance / n, n)
    return _normal_result(MetricKind.CONTINUOUS, control, estimates, level, prior, lower_is_better)


def analyse_ratio(
    summaries: Mapping[str, RatioSummary],
    control: str = CONTROL_VARIANT,
    level: float = CREDIBLE_LEVEL,
    prior: Prior | None = None,
    lower_is_better: bool = False,
) -> BayesianResult:
    """Result of a ratio metric from each variant's sums over its exposed subjects.

    The posterior of each ratio Σx / Σy is Normal with the delta-method variance;
    `lower_is_better` as for `analyse_continuous`.
    """
    estimates = {
        key: (*ratio_estimate(summaries[key], f"variant {key!r}"), summaries[key].n)
        for key in ordered_variants(list(summaries), control)
    }
    return _normal_result(MetricKind.RATIO, control, estimates, level, prior, lower_is_better)
