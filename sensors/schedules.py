"""Daily schedules: load yesterday's landing day, then analyse every experiment."""

import dagster as dg

from assets import ANALYSIS_ASSETS, experiment_catalog, experiment_definitions, raw_events
from assets.partitions import experiment_partitions

ingest_job = dg.define_asset_job(
    "daily_ingest",
    selection=dg.AssetSelection.assets(raw_events, experiment_catalog, experiment_definitions),
    description="Sync the catalog, snapshot the definitions and load one landing day.",
)

analysis_job = dg.define_asset_job(
    "experiment_analysis",
    selection=dg.AssetSelection.assets(*ANALYSIS_ASSETS),
    description="Exposures, conversions, metrics and results of one experiment.",
)

# Partitioned schedules take their timezone from the partitions (UTC landing days);
# 01:30 leaves late files of the previous day time to land.
daily_ingest_schedule = dg.build_schedule_from_partitioned_job(
    ingest_job, hour_of_day=1, minute_of_hour=30
)


@dg.schedule(job=analysis_job, cron_schedule="30 2 * * *", execution_timezone="UTC")
def daily_analysis_schedule(context: dg.ScheduleEvaluationContext):
    """One run per experiment partition, an hour after the ingest, once per day each."""
    day = context.scheduled_execution_time.date().isoformat()
    keys = context.instance.get_dynamic_partitions(experiment_partitions.name)
    return [dg.RunRequest(run_key=f"{key}:{day}", partition_key=key) for key in sorted(keys)]
