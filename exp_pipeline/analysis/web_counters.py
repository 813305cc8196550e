"""The classic web counters per variant, for experiments whose events use their names.

Many sites instrument a landing page with a fixed vocabulary rather than metric
definitions: `impression`, `cta_click`, `form_start`, `form_submit` and `conversion`
events, the conversion carrying its monetary `value`. Analysts expect the familiar table
for those (impressions, CTA clicks, form starts and submits, conversions, unique sessions,
conversion rate = conversions / impressions, conversion value total) beside the Bayesian
results, so it is computed for every experiment and shown when any counter is non-zero.

Counted like every metric: analysis events (no bots, no Do-Not-Track) of the exposed
subjects inside the window. `unique_sessions` is the number of distinct `session_id`s
among those events (events without one do not count). A conversion whose `value` is not a
number adds nothing to the value total.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from exp_pipeline.analysis.definitions import ExperimentDefinition
from exp_pipeline.engines.base import Warehouse, as_engine
from exp_pipeline.engines.sql import statement

COUNTERS = ("impressions", "cta_clicks", "form_starts", "form_submits", "conversions")


@dataclass(frozen=True)
class WebCounters:
    """One variant's counters; `conversion_rate` is None without impressions."""

    variant: str
    exposed: int
    impressions: int
    cta_clicks: int
    form_starts: int
    form_submits: int
    conversions: int
    unique_sessions: int
    conversion_value_total: float

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.impressions if self.impressions else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "conversion_rate": self.conversion_rate}


def read_web_counters(
    warehouse: Warehouse, experiment: ExperimentDefinition
) -> dict[str, WebCounters]:
    """Every variant's counters (zeros for a variant nobody was exposed to), or {} when the
    experiment has none of the counter events at all."""
    rows = as_engine(warehouse).fetch(
        statement("web_counters"),
        {"key": experiment.key, "start": experiment.start_utc, "end": experiment.end_utc},
    )
    found = {row[0]: row for row in rows}
    counters = {
        variant: WebCounters(
            variant, *(int(v) for v in found[variant][1:-1]), float(found[variant][-1])
        )
        if variant in found
        else WebCounters(variant, 0, 0, 0, 0, 0, 0, 0, 0.0)
        for variant in experiment.variants
    }
    if not any(getattr(c, name) for c in counters.values() for name in COUNTERS):
        return {}
    return counters
