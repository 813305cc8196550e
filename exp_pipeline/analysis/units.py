"""Analysis units: what a metric is counted per, a person or a group (docs/groups.md).

A metric's `aggregation` is `person` (the default: the exposed subject, its distinct_id)
or a group type such as `organization`, PostHog's group analytics naming: the unit is then
the group key an event names in its `$groups` property. Every per-unit transform
(conversions, per-variant sums) is one statement text over two relations that only this
module chooses: the unit's events (`unit_id`, `variant`, `event`, `ts`, `event_uid`,
`properties`) and its exposed units (`unit_id`, `variant`), so the SQL of a funnel or a sum
is written once whichever unit it counts.
"""

from __future__ import annotations

from typing import Any

from exp_pipeline.engines.sql import json_path, statement

PERSON = "person"
GROUPS_PROPERTY = "$groups"


def aggregation(metric: dict[str, Any]) -> str:
    """`metric`'s unit: `person`, or a group type (definitions stored before the field
    existed are per person)."""
    return str(metric.get("aggregation", PERSON))


def group_type(metric: dict[str, Any]) -> str | None:
    """The group type `metric` is analysed per, or None when it is analysed per person."""
    unit = aggregation(metric)
    return None if unit == PERSON else unit


def group_types(metrics: tuple[dict[str, Any], ...]) -> list[str]:
    """The distinct group types of `metrics`, in first-use order."""
    return list(dict.fromkeys(t for m in metrics if (t := group_type(m)) is not None))


def group_path(group: str, dialect: str) -> str:
    """The JSON path of `$groups.<group>` in `dialect`, each member literal (`json_path`):
    `$."$groups"."organization"` in DuckDB, `$['$groups']['organization']` in Spark."""
    return json_path(GROUPS_PROPERTY, dialect) + json_path(group, dialect).removeprefix("$")


def unit_events_sql(metric: dict[str, Any]) -> str:
    """The relation of `metric`'s units' analysis events in the window, with their variant."""
    return statement("subject_events" if group_type(metric) is None else "group_events")


def exposed_units_sql(metric: dict[str, Any]) -> str:
    """The relation of `metric`'s exposed units (`unit_id`, `variant`)."""
    return statement("subject_units" if group_type(metric) is None else "group_units")


def unit_params(metric: dict[str, Any], dialect: str) -> dict[str, Any]:
    """The parameters the unit relations of `metric` bind beyond $key, $start and $end."""
    group = group_type(metric)
    if group is None:
        return {}
    return {"group_type": group, "group_path": group_path(group, dialect)}
