"""Dagster software-defined assets: thin wrappers over `exp_pipeline`."""

from assets.analysis import (
    conversions,
    experiment_results,
    exposures,
    funnel_metrics,
    subject_context,
    trend_metrics,
)
from assets.catalog import experiment_catalog, experiment_definitions
from assets.flags import flags_snapshot
from assets.guardrails import guardrail_metrics
from assets.ingest import raw_events

# Experiment-scoped assets, in dependency order.
ANALYSIS_ASSETS = [
    exposures,
    subject_context,
    conversions,
    funnel_metrics,
    trend_metrics,
    experiment_results,
]
ALL_ASSETS = [
    experiment_catalog,
    experiment_definitions,
    raw_events,
    *ANALYSIS_ASSETS,
    guardrail_metrics,
    flags_snapshot,
]

__all__ = [
    "ALL_ASSETS",
    "ANALYSIS_ASSETS",
    "experiment_catalog",
    "experiment_definitions",
    "flags_snapshot",
    "guardrail_metrics",
    "raw_events",
]
