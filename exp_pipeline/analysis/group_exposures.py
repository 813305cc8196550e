"""Group exposures: which groups an experiment reached, per group type its metrics use.

A group (an organisation, a project: a metric's `aggregation`, docs/groups.md) is exposed
when one of its members is: each exposed subject of `exposures` belongs to the group its
first-touch signal's event names in `$groups` (`flag_assignments.event_uid` joins the
event), and the group's first exposure is its earliest member's. The group takes its
members' variant; members in different variants exclude it (`multiple_variants`, found
with min <> max as for subjects). Exposed subjects whose exposure event names no group of
the type expose none and are counted (`no_group`), so every exposed subject is accounted
for. Subjects excluded from `exposures` (forced, bots, ...) never expose a group.

Built after `exposures`, as its own statements (sql/group_exposure_classes.sql staged
once, group_exposures.sql and group_exposure_exclusions.sql), on any `Engine`.
"""

from __future__ import annotations

from dataclasses import dataclass

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.analysis.units import group_path, group_types
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import statement

GROUP_EXCLUSION_REASONS = ("multiple_variants", "no_group")


@dataclass(frozen=True)
class GroupExposureSummary:
    """One group type's exposed groups per variant (zeros included) and exclusions:
    `multiple_variants` counts groups, `no_group` counts exposed subjects."""

    group_type: str
    exposures: dict[str, int]
    excluded: dict[str, int]


def build_group_exposures(
    warehouse: Warehouse, experiment: ExperimentDefinition
) -> dict[str, GroupExposureSummary]:
    """Replace `experiment`'s group exposures and exclusions for every group type its
    metrics aggregate by (none: the rows are only cleared); summarise them."""
    engine = as_engine(warehouse)
    base = {
        "key": experiment.key,
        "flag": experiment.flag_key,
        "timezone": experiment.timezone,
    }
    with engine.replacing(experiment.key, "group_exposures", "group_exposure_exclusions"):
        for group in group_types(experiment.metrics):
            params = {
                **base,
                "group_type": group,
                "group_path": group_path(group, engine.dialect),
            }
            with engine.staged(
                "group_exposure_classes", statement("group_exposure_classes"), params
            ):
                engine.insert("group_exposures", statement("group_exposures"), params)
                engine.insert(
                    "group_exposure_exclusions", statement("group_exposure_exclusions"), params
                )
    return read_group_exposure_summaries(engine, experiment)


def read_group_exposure_summaries(
    warehouse: Warehouse, experiment: ExperimentDefinition
) -> dict[str, GroupExposureSummary]:
    """Per group type of `experiment`'s metrics, its stored group exposure summary."""
    engine = as_engine(warehouse)
    key = {"key": experiment.key}
    counts: dict[str, dict[str, int]] = {}
    for group, variant, n in engine.fetch(statement("group_exposure_counts"), key):
        counts.setdefault(group, {})[variant] = int(n)
    excluded: dict[str, dict[str, int]] = {}
    for group, reason, n in engine.fetch(statement("group_exclusion_counts"), key):
        excluded.setdefault(group, {})[reason] = int(n)
    return {
        group: GroupExposureSummary(
            group_type=group,
            exposures={v: counts.get(group, {}).get(v, 0) for v in experiment.variants},
            excluded={r: excluded.get(group, {}).get(r, 0) for r in GROUP_EXCLUSION_REASONS},
        )
        for group in group_types(experiment.metrics)
    }
