"""Dagster software-defined assets: thin wrappers over `exp_pipeline`."""

from assets.catalog import experiment_catalog, experiment_definitions
from assets.ingest import raw_events

ALL_ASSETS = [experiment_catalog, experiment_definitions, raw_events]

__all__ = ["ALL_ASSETS", "experiment_catalog", "experiment_definitions", "raw_events"]
