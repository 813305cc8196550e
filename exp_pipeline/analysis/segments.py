"""The `segments` section of a results document: the results broken down by context.

For every catalog segment attribute (docs/segments.md) and each of its values: exposed
subjects per variant, the sample-ratio test of that split against the allocation (the
context is pre-treatment, so a mismatch inside a segment is as alarming as an overall
one), and per metric the same fixed-horizon and always-valid comparison as the overall
result (two-proportion z for funnels, Welch t for continuous metrics, delta-method z for
ratios). Trend metrics and metrics counted per group are not broken down, and say why.

Multiple testing: ONE e-BH family holds every always-valid comparison of the experiment,
overall and per segment, so each segment added makes every adjustment, the overall ones
included, honestly stricter, and the false discovery rate holds across variants, metrics,
segments and daily looks at once. Holm stays within each family it was defined for (the
secondary metrics of the overall result, or of one segment).

With `pooling: true` the primary funnel's lift is also partially pooled across the
attribute's segments (`stats.segment_pooling`): shrunken per-segment lifts, the lift of the
typical segment, the spread tau, and r_hat and ESS for each. A segment enters the model
only with at least `MIN_POOLING_SUBJECTS` first-step subjects in every variant; smaller
ones are merged into `(other)` first, because a tiny segment with an extreme rate is where
the sampler diverged, and its lift says nothing on its own anyway. An `(other)` still too
small is left out; all of this is reported. A run that does not converge raises
`ConvergenceError`: the asset fails with its message rather than publish it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import duckdb

from exp_pipeline.analysis.comparisons import frequentist_blocks, json_number
from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.segment_aggregates import (
    MAX_SEGMENT_VALUES,
    OTHER_VALUES,
    SegmentMembers,
    segment_members,
)
from exp_pipeline.analysis.verdict_fields import sample_ratio_block
from exp_pipeline.stats import (
    FrequentistResult,
    MeanSummary,
    RatioSummary,
    StatsInputError,
    ratio_z_test,
    two_proportion_z_test,
    welch_t_test,
)
from exp_pipeline.stats.always_valid import always_valid_test
from exp_pipeline.stats.multiple_testing import e_bh_adjust
from exp_pipeline.stats.sampling_settings import SamplingSettings
from exp_pipeline.stats.significance import MIN_EXPOSED_SUBJECTS

# A segment below this many first-step subjects in a variant is too small to be pooled on
# its own; the same threshold as the `not_enough_exposure` significance code.
MIN_POOLING_SUBJECTS = MIN_EXPOSED_SUBJECTS
TREND_REASON = (
    "trend counts are events tagged with the variant, from any subject, over "
    "$feature_flag_called exposure: neither is limited to exposed subjects, whose context "
    "alone is known, so a per-segment figure would be a different metric"
)

# Per metric key and treatment variant: a fixed-horizon result, or why there is none.
Comparisons = dict[str, dict[str, FrequentistResult | str]]
# One family member of the joint e-BH: the comparisons and the blocks they became.
Family = tuple[Mapping[str, Mapping[str, FrequentistResult | str]], dict[str, Any]]


def _attempt(test: Callable[[], FrequentistResult]) -> FrequentistResult | str:
    try:
        return test()
    except StatsInputError as exc:
        return str(exc)


def _treatments(variants: tuple[str, ...], control: str) -> list[str]:
    return [v for v in variants if v != control]


def _rate(numerator: float, denominator: float) -> float | None:
    return json_number(numerator / denominator) if denominator else None


def _funnel(
    counts: Mapping[str, list[int]], control: str
) -> tuple[list[dict[str, Any]], dict[str, FrequentistResult | str]]:
    variants = [
        {
            "variant_key": v,
            "first_step": first,
            "converted": last,
            "conversion_rate": _rate(last, first),
        }
        for v, (first, last) in counts.items()
    ]
    c_first, c_last = counts[control]
    tests = {
        t: _attempt(lambda t=t: two_proportion_z_test(c_last, c_first, counts[t][1], counts[t][0]))
        for t in counts
        if t != control
    }
    return variants, tests


def _continuous(
    sums: Mapping[str, RatioSummary], control: str
) -> tuple[list[dict[str, Any]], dict[str, FrequentistResult | str]]:
    variants = [
        {
            "variant_key": v,
            "subjects": int(s.n),
            "sum": json_number(s.sum_x),
            "mean": _rate(s.sum_x, s.n),
        }
        for v, s in sums.items()
    ]

    def test(treatment: str) -> FrequentistResult:
        c, t = sums[control], sums[treatment]
        return welch_t_test(
            MeanSummary.from_sums(c.n, c.sum_x, c.sum_x2, f"variant {control!r}"),
            MeanSummary.from_sums(t.n, t.sum_x, t.sum_x2, f"variant {treatment!r}"),
        )

    return variants, {t: _attempt(lambda t=t: test(t)) for t in sums if t != control}


def _ratio(
    sums: Mapping[str, RatioSummary], control: str
) -> tuple[list[dict[str, Any]], dict[str, FrequentistResult | str]]:
    variants = [
        {
            "variant_key": v,
            "subjects": int(s.n),
            "numerator": json_number(s.sum_x),
            "denominator": json_number(s.sum_y),
            "ratio": _rate(s.sum_x, s.sum_y),
        }
        for v, s in sums.items()
    ]
    tests = {
        t: _attempt(lambda t=t: ratio_z_test(sums[control], sums[t])) for t in sums if t != control
    }
    return variants, tests


def _not_segmented(metric: dict[str, Any]) -> str | None:
    """Why `metric` has no per-segment comparison, or None when it has one."""
    if metric.get("aggregation", "person") != "person":
        return (
            f"counted per {metric['aggregation']}: the context is a person's, and a group's "
            "persons can sit in several segments"
        )
    if metric["kind"] == "trend":
        return TREND_REASON
    if metric["kind"] not in ("funnel", "continuous", "ratio"):
        return f"no segment breakdown for metric kind {metric['kind']!r}"
    return None


def _cap(document: dict[str, Any]) -> float | None:
    """The overall winsorisation cap of a metric, so every segment caps at the same value."""
    winsorisation = document.get("winsorisation") or {}
    return winsorisation.get("cap")


def _metric_breakdown(
    members: SegmentMembers, metric: dict[str, Any], document: dict[str, Any], control: str
) -> dict[str, tuple[dict[str, Any], dict[str, FrequentistResult | str]]]:
    """Per segment: the metric's segment document (without its frequentist block) and its
    comparisons."""
    reason = _not_segmented(metric)
    if reason is not None:
        base = {"metric_key": metric["key"], "kind": metric["kind"], "reason": reason}
        return {segment: (dict(base), {}) for segment in members.segments}
    if metric["kind"] == "funnel":
        per_segment = {s: _funnel(c, control) for s, c in members.funnel_counts(metric).items()}
    elif metric["kind"] == "continuous":
        sums = members.sums(metric, _cap(document))
        per_segment = {s: _continuous(v, control) for s, v in sums.items()}
    else:
        sums = members.sums(metric, _cap(document))
        per_segment = {s: _ratio(v, control) for s, v in sums.items()}
    return {
        segment: (
            {"metric_key": metric["key"], "kind": metric["kind"], "variants": variants},
            tests,
        )
        for segment, (variants, tests) in per_segment.items()
    }


def _pooling_counts(
    counts: dict[str, dict[str, list[int]]],
) -> tuple[dict[str, dict[str, list[int]]], list[str], list[str]]:
    """The segments the pooling model sees: large ones alone, small ones merged into
    `(other)` (left out if still small). Returns (counts, merged, left out)."""

    def large(by_variant: Mapping[str, list[int]]) -> bool:
        return min(first for first, _ in by_variant.values()) >= MIN_POOLING_SUBJECTS

    kept = {s: c for s, c in counts.items() if s != OTHER_VALUES and large(c)}
    merged = [s for s in counts if s not in kept]
    other: dict[str, list[int]] = {}
    for segment in merged:
        for variant, (first, last) in counts[segment].items():
            total = other.setdefault(variant, [0, 0])
            total[0] += first
            total[1] += last
    left_out: list[str] = []
    if other and large(other):
        kept[OTHER_VALUES] = other
    else:
        left_out = merged
    return kept, [s for s in merged if s not in left_out], left_out


def _pooling(
    counts: dict[str, dict[str, list[int]]], control: str, sampling: SamplingSettings
) -> dict[str, Any]:
    """The partial pooling of the primary funnel's lift across one attribute's segments."""
    model_counts, merged, left_out = _pooling_counts(counts)
    section: dict[str, Any] = {
        "metric_key": None,
        "min_subjects_per_variant": MIN_POOLING_SUBJECTS,
        "merged_into_other": merged,
        "left_out": left_out,
    }
    if len(model_counts) < 2:
        section["reason"] = (
            f"partial pooling needs two segments with at least {MIN_POOLING_SUBJECTS} "
            f"first-step subjects in every variant; there are {len(model_counts)}"
        )
        return section
    # PyMC takes seconds to import: only experiments that pool pay for it.
    from exp_pipeline.stats.segment_pooling import pool_segment_lift

    result = pool_segment_lift(model_counts, control=control, settings=sampling)
    section.update(result.to_dict())
    return section


def joint_e_bh(families: list[Family]) -> int:
    """Adjust the e-values of every comparison in `families` as ONE e-BH family, writing
    `sequential.e_bh_adjusted` into their blocks; return the family's size.

    Untestable comparisons (a reason, or an undefined e-value) take no part, as in
    `comparisons.frequentist_blocks`.
    """
    members: list[tuple[dict[str, Any], float]] = []
    for comparisons, blocks in families:
        for metric, by_variant in comparisons.items():
            for variant, result in by_variant.items():
                if isinstance(result, str):
                    continue
                e_value = always_valid_test(result).e_value
                if not math.isnan(e_value):
                    members.append((blocks[metric][variant], e_value))
    adjusted = e_bh_adjust(e for _, e in members)
    for (block, _), value in zip(members, adjusted, strict=True):
        block["sequential"]["e_bh_adjusted"] = json_number(value)
    return len(members)


def segments_section(
    con: duckdb.DuckDBPyConnection,
    experiment: ExperimentDefinition,
    metric_documents: list[dict[str, Any]],
    overall: Family,
    sampling: SamplingSettings,
) -> dict[str, Any]:
    """The document's `segments` section; re-adjusts the overall blocks' e-BH values in
    the joint family. `overall` is the overall comparisons and their frequentist blocks."""
    control = experiment.control
    families: list[Family] = [overall]
    attributes = []
    for attribute, pooling in experiment.segments:
        with segment_members(con, experiment.key, experiment.variants, attribute) as members:
            breakdowns = [
                _metric_breakdown(members, metric, document, control)
                for metric, document in zip(experiment.metrics, metric_documents, strict=True)
            ]
            primary_counts = (
                members.funnel_counts(experiment.metrics[0])
                if pooling and experiment.metrics[0]["kind"] == "funnel"
                else None
            )
        segments = []
        for segment, exposures in members.exposures.items():
            comparisons: Comparisons = {
                metric["key"]: breakdown[segment][1]
                for metric, breakdown in zip(experiment.metrics, breakdowns, strict=True)
            }
            blocks = frequentist_blocks(comparisons)
            families.append((comparisons, blocks))
            metrics = []
            for breakdown in breakdowns:
                document, _ = breakdown[segment]
                if "reason" not in document:
                    document["frequentist"] = blocks[document["metric_key"]]
                metrics.append(document)
            segments.append(
                {
                    "segment": segment,
                    "exposures": exposures,
                    "sample_ratio_mismatch": sample_ratio_block(exposures, experiment.allocation),
                    "metrics": metrics,
                }
            )
        entry: dict[str, Any] = {"attribute": attribute, "pooling": pooling, "segments": segments}
        if primary_counts is not None:
            entry["pooled"] = _pooling(primary_counts, control, sampling)
            entry["pooled"]["metric_key"] = experiment.metrics[0]["key"]
        attributes.append(entry)
    return {
        "max_values": MAX_SEGMENT_VALUES,
        "e_bh_family_size": joint_e_bh(families),
        "attributes": attributes,
    }
