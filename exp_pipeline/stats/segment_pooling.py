"""Partial pooling of a binary metric's lift across segments (country, platform, ...).

Per-segment lifts of small segments are noisy: read one by one, the extreme ones are
mostly noise. A hierarchical model lets each segment borrow strength from the others:
segments whose data say little move toward the lift of the typical segment, segments
with plenty of data keep their own. How far they move is learned from how much the
segments really differ (`tau`), not chosen by hand.

The model, on the log-odds scale, for segment s of S and treatment t (control is the
baseline), is the usual normal hierarchy of the effects:

    baseline_mean    ~ Normal(0, baseline_mean_scale)
    baseline[s]      ~ Normal(baseline_mean, baseline_spread)     control log-odds
    tau[t]           ~ HalfNormal(heterogeneity_scale)             spread across segments
    m[t]             ~ Normal(0, effect_scale)                     population log odds ratio
    effect[s, t]     ~ Normal(m[t], tau[t])                        independent over s
    converted[s, c]  ~ Binomial(exposed[s, c], logistic(baseline[s]))
    converted[s, t]  ~ Binomial(exposed[s, t], logistic(baseline[s] + effect[s, t]))

sampled non-centred, as the segments' mean effect plus standardised deviations:

    mu[t]            ~ Normal(0, √(effect_scale² + tau[t]² / S))   mean of effect[·, t]
    z[t, ·]          ~ ZeroSumNormal(1) over the segments
    effect[s, t]     = mu[t] + tau[t] · z[t, s]

which is the same distribution: with m integrated out, the effects' mean and their
deviations from it are independent normals with exactly these variances. Non-centred
because the segments that need pooling are those whose data are weak, where a centred
hierarchy traps the sampler in a funnel. Zero-sum deviations because with free ones the
mean and every deviation trade off along a ridge (raise m, lower all z): on realistic
counts that ridge doubled the sampler's steps and left divergent transitions that the
convergence gate rightly refused; without it, neither. The baselines are centred with a
fixed spread: every segment's control rate is well measured and only a nuisance here,
and a fixed spread leaves no funnel to fall into. With `fixed_tau` the spread is a
constant instead: a large one means no pooling at all.

Reported per segment: the raw lift (observed rates, with the exact unpooled interval of
the funnel convention, Beta(1 + k, 1 + n − k) per variant) beside the shrunken lift
p_t / p_c − 1 with its credible interval. Reported per treatment: the pooled lift of the
typical segment, logistic(baseline_mean + mu) / logistic(baseline_mean) − 1, the mean
log odds ratio `mu` and the spread `tau`. Every one carries r_hat and ESS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from exp_pipeline.stats.inputs import FunnelCounts, StatsInputError, funnel_counts
from exp_pipeline.stats.intervals import CREDIBLE_LEVEL, lift_interval
from exp_pipeline.stats.posteriors import funnel_posterior
from exp_pipeline.stats.results import CONTROL_VARIANT
from exp_pipeline.stats.sampling import (
    ParameterSummary,
    SampledResult,
    SamplingSettings,
    binomial_count,
    sample_posterior,
)

MODEL_NAME = "segment_pooling"


@dataclass(frozen=True)
class PoolingPriors:
    """Prior scales, all on the log-odds scale.

    `effect_scale` 0.5, the prior sd of the population log odds ratio, keeps the typical
    lift within about ±65% on the odds at one standard deviation, wide for product
    experiments. `heterogeneity_scale` 0.25 says that segments' log odds ratios usually
    differ by less than 0.25 (about 25% in relative lift) but allows more when the data
    insist. `baseline_spread` 1.5 lets control rates
    differ between segments by a factor of about 4.5 at one standard deviation.
    `fixed_tau`, when set, replaces the learned spread by that constant.
    """

    effect_scale: float = 0.5
    heterogeneity_scale: float = 0.25
    baseline_mean_scale: float = 2.5
    baseline_spread: float = 1.5
    fixed_tau: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None and name == "fixed_tau":
                continue
            if isinstance(value, bool) or not isinstance(value, Real):
                raise StatsInputError(f"pooling prior {name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise StatsInputError(
                    f"pooling prior {name} must be finite and positive, got {value!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SegmentLift:
    """One segment's lift of one treatment over control, raw and shrunken.

    `raw_lift` is the observed rate ratio − 1 (None when control has no conversions or
    either variant no subjects); `raw_interval` is its exact unpooled credible interval.
    """

    segment: str
    variant: str
    control_counts: FunnelCounts
    variant_counts: FunnelCounts
    raw_lift: float | None
    raw_interval: tuple[float, float]
    shrunken_lift: ParameterSummary

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "variant": self.variant,
            "control": {
                "exposed": self.control_counts.first_step,
                "converted": self.control_counts.last_step,
            },
            "treatment": {
                "exposed": self.variant_counts.first_step,
                "converted": self.variant_counts.last_step,
            },
            "raw_lift": self.raw_lift,
            "raw_interval": list(self.raw_interval),
            "shrunken_lift": self.shrunken_lift.to_dict(),
        }


@dataclass(frozen=True)
class PooledLift:
    """A treatment's lift for the typical segment, its log odds ratio and the spread.

    The typical segment weighs every segment equally, whatever its size: it is what a
    new segment would expect, not the experiment's overall lift (the subject-weighted
    funnel result gives that).
    """

    variant: str
    lift: ParameterSummary
    log_odds_ratio: ParameterSummary
    heterogeneity: ParameterSummary | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "lift": self.lift.to_dict(),
            "log_odds_ratio": self.log_odds_ratio.to_dict(),
            "heterogeneity": self.heterogeneity.to_dict() if self.heterogeneity else None,
        }


@dataclass(frozen=True)
class SegmentPoolingResult(SampledResult):
    """Shrunken per-segment lifts, pooled lifts and the run's diagnostics.

    `segments` is ordered by segment (as given), then treatment (as given, control
    excluded); `pooled` by treatment. `heterogeneity` is None under a fixed tau.
    """

    segments: tuple[SegmentLift, ...]
    pooled: tuple[PooledLift, ...]
    priors: PoolingPriors

    def parts(self) -> dict[str, Any]:
        return {
            "segments": [s.to_dict() for s in self.segments],
            "pooled": [p.to_dict() for p in self.pooled],
            "priors": self.priors.to_dict(),
        }


def _validated(
    counts_by_segment: Mapping[str, Mapping[str, Sequence[Real]]], control: str
) -> tuple[dict[str, dict[str, FunnelCounts]], list[str]]:
    """Counts per segment with control first, and the variant order shared by all."""
    if len(counts_by_segment) < 2:
        raise StatsInputError(
            f"partial pooling needs at least two segments, got {list(counts_by_segment)}"
        )
    validated: dict[str, dict[str, FunnelCounts]] = {}
    for segment, steps in counts_by_segment.items():
        if not isinstance(segment, str) or not segment:
            raise StatsInputError(f"segment keys must be non-empty strings, got {segment!r}")
        try:
            counts = funnel_counts(steps, control)
        except StatsInputError as error:
            raise StatsInputError(f"segment {segment!r}: {error}") from error
        for key, c in counts.items():
            binomial_count(c.first_step, f"segment {segment!r} variant {key!r} exposed")
            binomial_count(c.last_step, f"segment {segment!r} variant {key!r} converted")
        validated[segment] = counts
    variants = list(next(iter(validated.values())))
    for segment, counts in validated.items():
        if set(counts) != set(variants):
            raise StatsInputError(
                f"segment {segment!r} has variants {sorted(counts)}, others have "
                f"{sorted(variants)}: give every variant in every segment (zeros included)"
            )
    return validated, variants


def pooling_model(
    counts: Mapping[str, Mapping[str, FunnelCounts]],
    control: str,
    treatments: Sequence[str],
    priors: PoolingPriors,
) -> pm.Model:
    """The PyMC model of the module docstring, segments and treatments in the given order.

    Public so analysts can inspect it (prior checks, graphs); `pool_segment_lift`
    validates the counts before building it.
    """
    segments = list(counts)
    treatments = list(treatments)

    def matrix(field: str, variants: list[str]) -> np.ndarray:
        return np.array(
            [[getattr(counts[s][v], field) for v in variants] for s in segments], dtype=np.int64
        )

    coords = {"segment": segments, "treatment": treatments}
    with pm.Model(coords=coords) as model:
        baseline_mean = pm.Normal("baseline_mean", 0.0, priors.baseline_mean_scale)
        baseline = pm.Normal("baseline", baseline_mean, priors.baseline_spread, dims="segment")
        tau = (
            pt.full(len(treatments), priors.fixed_tau)
            if priors.fixed_tau is not None
            else pm.HalfNormal("tau", priors.heterogeneity_scale, dims="treatment")
        )
        mu = pm.Normal(
            "mu",
            0.0,
            pt.sqrt(priors.effect_scale**2 + tau**2 / len(segments)),
            dims="treatment",
        )
        # ZeroSumNormal sums to zero over its last axis: the segments.
        z = pm.ZeroSumNormal("z", sigma=1.0, dims=("treatment", "segment"))
        effect = (mu[:, None] + tau[:, None] * z).T
        pm.Binomial(
            "control_converted",
            n=matrix("first_step", [control])[:, 0],
            logit_p=baseline,
            observed=matrix("last_step", [control])[:, 0],
            dims="segment",
        )
        pm.Binomial(
            "treatment_converted",
            n=matrix("first_step", treatments),
            logit_p=baseline[:, None] + effect,
            observed=matrix("last_step", treatments),
            dims=("segment", "treatment"),
        )
        pm.Deterministic(
            "lift", _relative_lift(baseline[:, None], effect), dims=("segment", "treatment")
        )
        pm.Deterministic("pooled_lift", _relative_lift(baseline_mean, mu), dims="treatment")
    return model


def _log_sigmoid(x: pt.TensorVariable) -> pt.TensorVariable:
    return -pt.softplus(-x)


def _relative_lift(
    log_odds: pt.TensorVariable, log_odds_ratio: pt.TensorVariable
) -> pt.TensorVariable:
    """logistic(a + d) / logistic(a) − 1 through log-sigmoids and expm1, precise near 0."""
    return pt.expm1(_log_sigmoid(log_odds + log_odds_ratio) - _log_sigmoid(log_odds))


def _raw_lift(variant: FunnelCounts, control: FunnelCounts) -> float | None:
    if not (variant.first_step and control.first_step and control.last_step):
        return None
    return (variant.last_step / variant.first_step) / (control.last_step / control.first_step) - 1


def pool_segment_lift(
    counts_by_segment: Mapping[str, Mapping[str, Sequence[Real]]],
    control: str = CONTROL_VARIANT,
    priors: PoolingPriors | None = None,
    settings: SamplingSettings | None = None,
    level: float = CREDIBLE_LEVEL,
) -> SegmentPoolingResult:
    """Shrunken per-segment lifts of a binary metric from per-(segment, variant) counts.

    `{"DE": {"control": [1200, 60], "test": [1180, 71]}, "FR": {...}}`: per segment and
    variant the exposed subjects, then the converted ones (funnel step counts are
    accepted too: the first is the exposed, the last the converted). Every segment must
    list the same variants. Raises `ConvergenceError` when the chains did not converge.
    """
    priors = priors or PoolingPriors()
    settings = settings or SamplingSettings()
    counts, variants = _validated(counts_by_segment, control)
    treatments = variants[1:]
    model = pooling_model(counts, control, treatments, priors)
    # Diagnosed and gated: everything reported, and the hyperparameters. The per-segment
    # baselines and z are not reported; the lifts are functions of them.
    var_names = ["lift", "pooled_lift", "mu", "baseline_mean"]
    if priors.fixed_tau is None:
        var_names.append("tau")
    sampled = sample_posterior(model, MODEL_NAME, var_names, settings, level)
    segments = tuple(
        SegmentLift(
            segment=segment,
            variant=t,
            control_counts=counts[segment][control],
            variant_counts=counts[segment][t],
            raw_lift=_raw_lift(counts[segment][t], counts[segment][control]),
            raw_interval=lift_interval(
                funnel_posterior(counts[segment][t]),
                funnel_posterior(counts[segment][control]),
                level,
            ),
            shrunken_lift=sampled.summary(f"lift[{segment}, {t}]"),
        )
        for segment in counts
        for t in treatments
    )
    pooled = tuple(
        PooledLift(
            variant=t,
            lift=sampled.summary(f"pooled_lift[{t}]"),
            log_odds_ratio=sampled.summary(f"mu[{t}]"),
            heterogeneity=sampled.summary(f"tau[{t}]") if priors.fixed_tau is None else None,
        )
        for t in treatments
    )
    return SegmentPoolingResult(
        control=control,
        segments=segments,
        pooled=pooled,
        priors=priors,
        settings=settings,
        diagnostics=sampled.diagnostics,
    )
