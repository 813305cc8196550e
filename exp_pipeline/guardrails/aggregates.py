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

Set-based: a guardrail tick looks at every running experiment (500 in the benchmark), so
the experiments' flags and windows are staged as rows (`Engine.staged_rows`) and a
handful of statements (data ends with health, then one per metric kind, and one per
property for continuous metrics) each scan `flag_assignments` once for all of them,
instead of four or more statements per experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from exp_pipeline.engines.base import Engine, Warehouse, as_engine
from exp_pipeline.engines.sql import json_path, property_sum, statement
from exp_pipeline.guardrails.targets import GuardrailSpec, GuardrailTarget
from exp_pipeline.timeutil import iso_utc

_FLAGGED = statement("guardrail_flagged_events")
# The staged relations: one row per experiment (guardrail_looks), one per window of a
# guardrail (guardrail_windows); `look` numbers the rows.
LOOKS = {
    "look": "INTEGER",
    "flag": "VARCHAR",
    "window_start": "TIMESTAMPTZ",
    "window_end": "TIMESTAMPTZ",
}
WINDOWS = {**LOOKS, "event_a": "VARCHAR", "event_b": "VARCHAR"}
# A guardrail window: its experiment, the metric watched, its start and end.
Window = tuple[GuardrailTarget, dict[str, Any], datetime, datetime]

# Per metric kind: numerator and denominator per window and variant over the flagged
# events; event_a and event_b are the window's metric events (`_metric_events`).
KIND_SQL = {
    "ratio": f"""
        SELECT look, variant, count(*) FILTER (WHERE event = event_a)::DOUBLE,
               count(*) FILTER (WHERE event = event_b)::DOUBLE
        FROM ({_FLAGGED}) w GROUP BY look, variant
    """,
    "trend": f"""
        SELECT look, variant, count(*) FILTER (WHERE event = event_a)::DOUBLE,
               count(DISTINCT distinct_id)::DOUBLE
        FROM ({_FLAGGED}) w GROUP BY look, variant
    """,
    "funnel": f"""
        SELECT look, variant, count(DISTINCT distinct_id) FILTER (WHERE event = event_a)::DOUBLE,
               count(DISTINCT distinct_id) FILTER (WHERE event = event_b)::DOUBLE
        FROM ({_FLAGGED}) w GROUP BY look, variant
    """,
    "continuous": f"""
        SELECT w.look, w.variant,
               coalesce({property_sum("e.properties", "w.event = w.event_a")}, 0),
               count(DISTINCT w.distinct_id)::DOUBLE
        FROM ({_FLAGGED}) w JOIN events e ON e.event_uid = w.event_uid
        GROUP BY w.look, w.variant
    """,
}


def _metric_events(metric: dict[str, Any]) -> tuple[str, str | None]:
    """The (event_a, event_b) a window of `metric` counts: numerator and denominator events
    (ratio), last and first step (funnel), the metric event (trend, continuous)."""
    kind = metric["kind"]
    if kind == "ratio":
        return metric["numerator"], metric["denominator"]
    if kind == "funnel":
        return metric["steps"][-1], metric["steps"][0]
    return metric["event"], None


def _group_key(metric: dict[str, Any]) -> tuple[str, str | None]:
    """Windows read by one statement: a kind, and for continuous metrics the property."""
    return metric["kind"], metric.get("property") if metric["kind"] == "continuous" else None


def _window_counts(engine: Engine, windows: list[Window]) -> list[dict[str, dict[str, float]]]:
    """Per window (target, metric, start, end): numerator and denominator per variant."""
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, (_, metric, _, _) in enumerate(windows):
        groups.setdefault(_group_key(metric), []).append(i)
    found: dict[int, dict[str, tuple[float, float]]] = {}
    for (kind, prop), members in groups.items():
        rows = [
            (
                i,
                windows[i][0].flag_key,
                windows[i][2],
                windows[i][3],
                *_metric_events(windows[i][1]),
            )
            for i in members
        ]
        params = {} if prop is None else {"path": json_path(prop, engine.dialect)}
        with engine.staged_rows("guardrail_windows", WINDOWS, rows):
            for look, variant, num, den in engine.fetch(KIND_SQL[kind], params):
                found.setdefault(look, {})[variant] = (num, den)
    return [
        {
            v: dict(
                zip(("numerator", "denominator"), found.get(i, {}).get(v, (0.0, 0.0)), strict=True)
            )
            for v in target.allocation
        }
        for i, (target, _, _, _) in enumerate(windows)
    ]


def _windows_of(
    target: GuardrailTarget, guardrail: GuardrailSpec, data_end: datetime
) -> list[tuple[datetime, datetime]]:
    """The guardrail's trailing window, and for a sequential one also the cumulative one:
    the always-valid test needs counts that only grow, since the start, not a sliding
    window (its carried p-value would lose its guarantee)."""
    start = target.start_utc
    if guardrail.observation_window_minutes:
        start = max(start, data_end - timedelta(minutes=guardrail.observation_window_minutes))
    windows = [(start, data_end)]
    if guardrail.method == "sequential":
        windows.append((target.start_utc, data_end))
    return windows


def _looks(
    engine: Engine, targets: Sequence[GuardrailTarget], now: datetime
) -> tuple[list[datetime | None], dict[int, dict[str, Any]]]:
    """Each target's data end (its freshest flagged event, capped by now and its end; None
    without any) and, per target with data, its health: exposed subjects per variant,
    unknown and multi-variant ones. One statement for every target."""
    rows = [
        (i, t.flag_key, t.start_utc, min(now, t.end_utc) if t.end_utc else now)
        for i, t in enumerate(targets)
    ]
    counts: dict[int, list[tuple[str, int, int]]] = {}
    ends: dict[int, datetime] = {}
    with engine.staged_rows("guardrail_looks", LOOKS, rows):
        for look, variant, single, mixed, newest in engine.fetch(statement("guardrail_health"), {}):
            counts.setdefault(look, []).append((variant, single, mixed))
            ends[look] = max(ends[look], newest) if look in ends else newest
    health = {}
    for i in ends:
        exposed: dict[str, int] = dict.fromkeys(targets[i].allocation, 0)
        unknown = multiple = 0
        for variant, single, mixed in counts[i]:
            multiple += mixed
            if variant in exposed:
                exposed[variant] += single
            else:
                unknown += single
        health[i] = {
            "exposed": exposed,
            "unknown_variant_subjects": unknown,
            "multiple_variant_subjects": multiple,
            "subjects": sum(exposed.values()) + unknown + multiple,
        }
    return [ends.get(i) for i in range(len(targets))], health


def compute_all_aggregates(
    warehouse: Warehouse, targets: Sequence[GuardrailTarget], now: datetime
) -> list[dict[str, Any]]:
    """The snapshot payload of every target (in order): health and every guardrail's
    aggregates, from a fixed number of set-based statements whatever the targets' count."""
    engine = as_engine(warehouse)
    ends, health = _looks(engine, targets, now)
    windows = [
        (target, guardrail.metric, start, stop)
        for target, end in zip(targets, ends, strict=True)
        if end is not None
        for guardrail in target.guardrails
        for start, stop in _windows_of(target, guardrail, end)
    ]
    counts = iter(_window_counts(engine, windows))
    payloads = []
    for i, (target, end) in enumerate(zip(targets, ends, strict=True)):
        payload: dict[str, Any] = {
            "experiment_key": target.key,
            "data_end": iso_utc(end),
            "allocation": target.allocation,
            "health": health.get(i),
            "guardrails": [],
        }
        if end is not None:  # else no flagged event yet: nothing to judge
            for guardrail in target.guardrails:
                spans = _windows_of(target, guardrail, end)
                aggregates: dict[str, Any] = {
                    "metric_key": guardrail.metric_key,
                    "window_start": iso_utc(spans[0][0]),
                    "window_end": iso_utc(end),
                    "variants": next(counts),
                }
                if len(spans) > 1:
                    aggregates["cumulative"] = next(counts)
                payload["guardrails"].append(aggregates)
        payloads.append(payload)
    return payloads


def compute_aggregates(
    warehouse: Warehouse, target: GuardrailTarget, now: datetime
) -> dict[str, Any]:
    """The snapshot payload of one experiment: health and every guardrail's aggregates."""
    return compute_all_aggregates(warehouse, [target], now)[0]
