"""The daily schedule: each morning, load the previous UTC day and refresh definitions."""

import dagster as dg

from assets import experiment_catalog, experiment_definitions, raw_events

ingest_job = dg.define_asset_job(
    "daily_ingest",
    selection=dg.AssetSelection.assets(raw_events, experiment_catalog, experiment_definitions),
    description="Sync the catalog, snapshot the definitions and load one landing day.",
)

# Partitioned schedules take their timezone from the partitions (UTC landing days);
# 01:30 leaves late files of the previous day time to land.
daily_ingest_schedule = dg.build_schedule_from_partitioned_job(
    ingest_job, hour_of_day=1, minute_of_hour=30
)
