"""One metric's complete Bayesian result, built from its per-variant aggregates.

`analyse_funnel` and `analyse_trend` are what the pipeline calls: they validate the
aggregates, build the posteriors, and return a small frozen `BayesianResult` holding
everything an analyst's table needs, in variant order with control first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real

from exp_pipeline.stats.best import expected_loss, probability_to_be_best
from exp_pipeline.stats.inputs import funnel_counts, trend_counts
from exp_pipeline.stats.intervals import CREDIBLE_LEVEL, credible_interval, lift_interval
from exp_pipeline.stats.posteriors import (
    BetaPosterior,
    GammaPosterior,
    funnel_posterior,
    trend_posteriors,
)
from exp_pipeline.stats.significance import (
    NOT_ENOUGH_EXPOSURE_LOSS,
    MetricKind,
    SignificanceCode,
    has_enough_exposure,
    significance_code,
)

CONTROL_VARIANT = "control"


@dataclass(frozen=True)
class BayesianResult:
    """The Bayesian result of one metric; every mapping is keyed by variant, control first.

    `expected_loss` is that of `best_variant` (the variant most probably best) against the
    best of all the others, or 1.0 under `not_enough_exposure`, where it is not computed.
    `significant` is derived from `code`, so the two can never disagree.
    """

    kind: MetricKind
    control: str
    posteriors: Mapping[str, BetaPosterior | GammaPosterior]
    probabilities: Mapping[str, float]
    best_variant: str
    expected_loss: float
    code: SignificanceCode
    credible_intervals: Mapping[str, tuple[float, float]]
    lift_intervals: Mapping[str, tuple[float, float]]
    significant: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "significant", self.code == SignificanceCode.SIGNIFICANT)


def _result(
    kind: MetricKind,
    control: str,
    posteriors: Mapping[str, BetaPosterior | GammaPosterior],
    exposed_subjects: Mapping[str, float | None],
    level: float,
) -> BayesianResult:
    probabilities = probability_to_be_best(posteriors)
    # On a tie the earlier variant wins, so control is preferred to an equal challenger.
    best = max(probabilities, key=probabilities.__getitem__)
    loss = (
        expected_loss(posteriors, best)
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
    )


def analyse_funnel(
    steps_by_variant: Mapping[str, Sequence[Real]],
    control: str = CONTROL_VARIANT,
    level: float = CREDIBLE_LEVEL,
) -> BayesianResult:
    """Result of a funnel metric from each variant's subjects per step, first to last.

    `{"control": [1000, 420, 130], "test": [990, 450, 160]}`: the first count is the
    exposed subjects, the last the conversions; a one-step funnel converts everyone.
    """
    counts = funnel_counts(steps_by_variant, control)
    return _result(
        MetricKind.FUNNEL,
        control,
        {key: funnel_posterior(c) for key, c in counts.items()},
        {key: c.first_step for key, c in counts.items()},
        level,
    )


def analyse_trend(
    counts: Mapping[str, Real],
    exposures: Mapping[str, Real] | None = None,
    control: str = CONTROL_VARIANT,
    level: float = CREDIBLE_LEVEL,
) -> BayesianResult:
    """Result of a trend metric from each variant's event count and exposed subjects.

    A variant missing from `exposures` has an unknown audience: its relative exposure is
    1 and it counts as unexposed for the significance code.
    """
    validated = trend_counts(counts, exposures, control)
    return _result(
        MetricKind.TREND,
        control,
        trend_posteriors(validated, control),
        {key: c.exposure for key, c in validated.items()},
        level,
    )
