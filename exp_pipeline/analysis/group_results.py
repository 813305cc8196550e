"""What a results document says about a metric's unit (docs/groups.md).

A person metric is analysed over the experiment's exposed subjects. A metric aggregated by
a group type is analysed over the exposed groups: its per-variant `exposures` are groups,
a grouped trend's exposure is the exposed groups, and the metric's document carries the
group exposures and exclusions. The sample-ratio test compares units with the allocation,
which only holds for the unit that was randomised: when the experiment assigns by person,
members of one group land in different variants and group counts need not follow the
allocation, so the document says why there is no test instead of a misleading one. When
the experiment assigns by that group type (`subject_type`), the group SRM is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.group_exposures import GroupExposureSummary
from exp_pipeline.analysis.trends import TrendSeries
from exp_pipeline.analysis.units import PERSON, group_type

GroupSummaries = dict[str, GroupExposureSummary]


def unit_exposures(
    metric: dict[str, Any], subjects: dict[str, int], groups: GroupSummaries
) -> dict[str, int]:
    """Exposed units per variant of `metric`: `subjects`, or its group type's groups."""
    group = group_type(metric)
    return subjects if group is None else groups[group].exposures


def unit_series(
    metric: dict[str, Any], series: dict[str, TrendSeries], groups: GroupSummaries
) -> dict[str, TrendSeries]:
    """A trend's series with its exposure in units: a grouped trend's is the exposed groups
    (a person trend keeps its `$feature_flag_called` subjects)."""
    group = group_type(metric)
    if group is None:
        return series
    exposed = groups[group].exposures
    return {key: replace(s, exposure=exposed[key]) for key, s in series.items()}


def aggregation_fields(
    metric: dict[str, Any],
    experiment: ExperimentDefinition,
    groups: GroupSummaries,
    sample_ratio_mismatch: Callable[[dict[str, int], dict[str, float]], dict[str, Any]],
) -> dict[str, Any]:
    """The document fields of `metric`'s unit: its `aggregation` and, when grouped, `units`
    (group exposures, exclusions and the SRM of groups or why there is none)."""
    group = group_type(metric)
    if group is None:
        return {"aggregation": PERSON}
    summary = groups[group]
    if experiment.subject_type == group:
        srm = sample_ratio_mismatch(summary.exposures, experiment.allocation)
    else:
        srm = {
            "reason": (
                f"not computed: the experiment assigns variants per {experiment.subject_type}, "
                f"so {group} counts need not follow the allocation"
            )
        }
    return {
        "aggregation": group,
        "units": {
            "exposures": summary.exposures,
            "excluded": summary.excluded,
            "sample_ratio_mismatch": srm,
        },
    }


def units_note(metric: dict[str, Any]) -> list[str]:
    """A grouped metric's unit in words for reports (nothing for a person metric)."""
    units = metric.get("units")
    if not units:
        return []
    group = metric["aggregation"]
    exposed = ", ".join(f"{k} {n}" for k, n in units["exposures"].items())
    excluded = units["excluded"]
    srm = units["sample_ratio_mismatch"]
    if "reason" in srm:
        ratio = f"sample ratio {srm['reason']}"
    else:
        verdict = "MISMATCH" if srm["mismatch"] else "no mismatch"
        ratio = f"sample ratio of {group} groups: chi-square p = {srm['p_value']:.3g}, {verdict}"
    return [
        f"per {group}: exposed {exposed}; {excluded['multiple_variants']} groups excluded "
        f"(members in several variants), {excluded['no_group']} exposed subjects without "
        f"a {group}; {ratio}"
    ]
