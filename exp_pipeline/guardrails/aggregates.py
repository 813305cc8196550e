"""Per-variant guardrail aggregates, computed by the engine: DuckDB or Spark, same SQL.

A guardrail watches the trailing `observation_window_minutes` of data (the whole window
when unset). The trailing window ends at the freshest data, not the wall clock: the
newest event carrying the experiment's flag, capped by now and by the experiment's end.
Landing files arrive in batches, so "the last hour" of the wall clock is often empty
while the last hour of data is what the guardrail needs to see.

Variant attribution is by event, as for trends: an event counts for a variant when it
carries `$feature/<flag>` = variant. Bots and Do-Not-Track events never count. What the
numerator and denominator are depends on the metric kind:

- ratio: numerator events / denominator events;
- trend: metric events / distinct subjects with a flagged event in the window;
- funnel: subjects with a last-step event / subjects with a first-step event (step order
  is not enforced here: a guardrail needs a fast, conservative signal);
- continuous: sum of the property over metric events (summed exactly, so every engine
  gives the same bits: `engines.sql.property_sum`) / distinct subjects with a flagged
  event in the window.

Data health, over the whole experiment window up to the same end: exposed subjects per
variant (their flag signals name one defined variant), and subjects seen with two or
more variants (min <> max, so every engine agrees).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from exp_pipeline.engines.base import Engine, Warehouse, as_engine
from exp_pipeline.engines.sql import json_path, property_sum, statement
from exp_pipeline.guardrails.targets import GuardrailSpec, GuardrailTarget
from exp_pipeline.timeutil import iso_utc

_FLAGGED = statement("guardrail_flagged_events")

# Per metric kind: numerator and denominator per variant over the flagged events.
KIND_SQL = {
    "ratio": f"""
        SELECT variant, count(*) FILTER (WHERE event = $numerator)::DOUBLE,
               count(*) FILTER (WHERE event = $denominator)::DOUBLE
        FROM ({_FLAGGED}) w GROUP BY variant
    """,
    "trend": f"""
        SELECT variant, count(*) FILTER (WHERE event = $event)::DOUBLE,
               count(DISTINCT distinct_id)::DOUBLE
        FROM ({_FLAGGED}) w GROUP BY variant
    """,
    "funnel": f"""
        SELECT variant, count(DISTINCT distinct_id) FILTER (WHERE event = $last)::DOUBLE,
               count(DISTINCT distinct_id) FILTER (WHERE event = $first)::DOUBLE
        FROM ({_FLAGGED}) w GROUP BY variant
    """,
    "continuous": f"""
        SELECT w.variant, coalesce({property_sum("e.properties", "w.event = $event")}, 0),
               count(DISTINCT w.distinct_id)::DOUBLE
        FROM ({_FLAGGED}) w JOIN events e ON e.event_uid = w.event_uid
        GROUP BY w.variant
    """,
}


def _kind_params(metric: dict[str, Any], dialect: str) -> dict[str, Any]:
    kind = metric["kind"]
    if kind == "ratio":
        return {"numerator": metric["numerator"], "denominator": metric["denominator"]}
    if kind == "funnel":
        return {"first": metric["steps"][0], "last": metric["steps"][-1]}
    if kind == "continuous":
        return {"event": metric["event"], "path": json_path(metric["property"], dialect)}
    return {"event": metric["event"]}


def _variant_counts(
    engine: Engine,
    target: GuardrailTarget,
    guardrail: GuardrailSpec,
    start: datetime,
    end: datetime,
) -> dict[str, dict[str, float]]:
    metric = guardrail.metric
    rows = engine.fetch(
        KIND_SQL[metric["kind"]],
        {
            "flag": target.flag_key,
            "start": start,
            "end": end,
            **_kind_params(metric, engine.dialect),
        },
    )
    counts = {variant: (num, den) for variant, num, den in rows}
    return {
        v: dict(zip(("numerator", "denominator"), counts.get(v, (0.0, 0.0)), strict=True))
        for v in target.allocation
    }


def _guardrail_aggregates(
    engine: Engine,
    target: GuardrailTarget,
    guardrail: GuardrailSpec,
    data_end: datetime,
) -> dict[str, Any]:
    start = target.start_utc
    if guardrail.observation_window_minutes:
        start = max(start, data_end - timedelta(minutes=guardrail.observation_window_minutes))
    aggregates: dict[str, Any] = {
        "metric_key": guardrail.metric_key,
        "window_start": iso_utc(start),
        "window_end": iso_utc(data_end),
        "variants": _variant_counts(engine, target, guardrail, start, data_end),
    }
    if guardrail.method == "sequential":
        # The always-valid test needs counts that only grow: since the start, not a
        # sliding window (its carried p-value would lose its guarantee).
        aggregates["cumulative"] = _variant_counts(
            engine, target, guardrail, target.start_utc, data_end
        )
    return aggregates


def compute_aggregates(
    warehouse: Warehouse, target: GuardrailTarget, now: datetime
) -> dict[str, Any]:
    """The snapshot payload of one experiment: health and every guardrail's aggregates."""
    engine = as_engine(warehouse)
    cap = min(now, target.end_utc) if target.end_utc else now
    data_end = engine.fetch(
        statement("guardrail_data_end"),
        {"flag": target.flag_key, "start": target.start_utc, "cap": cap},
    )[0][0]
    payload: dict[str, Any] = {
        "experiment_key": target.key,
        "data_end": iso_utc(data_end),
        "allocation": target.allocation,
        "health": None,
        "guardrails": [],
    }
    if data_end is None:
        return payload  # no flagged event yet: nothing to judge
    exposed: dict[str, int] = dict.fromkeys(target.allocation, 0)
    unknown = multiple = 0
    for variant, single, mixed in engine.fetch(
        statement("guardrail_health"),
        {"flag": target.flag_key, "start": target.start_utc, "end": data_end},
    ):
        multiple += mixed
        if variant in exposed:
            exposed[variant] += single
        else:
            unknown += single
    payload["health"] = {
        "exposed": exposed,
        "unknown_variant_subjects": unknown,
        "multiple_variant_subjects": multiple,
        "subjects": sum(exposed.values()) + unknown + multiple,
    }
    payload["guardrails"] = [
        _guardrail_aggregates(engine, target, g, data_end) for g in target.guardrails
    ]
    return payload
