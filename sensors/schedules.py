"""Schedules: the daily ingest and analysis, and the frequent guardrail aggregates."""

import dagster as dg

from assets import (
    ANALYSIS_ASSETS,
    experiment_catalog,
    experiment_definitions,
    guardrail_metrics,
    raw_events,
)
from assets.partitions import experiment_partitions
from assets.settings import DEFINITION_SETTINGS as _SETTINGS
from exp_pipeline.catalog import project_timezone

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

guardrail_job = dg.define_asset_job(
    "guardrail_aggregates",
    selection=dg.AssetSelection.assets(guardrail_metrics),
    description="Per-variant guardrail aggregates of running experiments, for the sensor.",
)

# Partitioned schedules take their timezone from the partitions (UTC landing days);
# <hour>:30 leaves late files of the previous day time to land.
daily_ingest_schedule = dg.build_schedule_from_partitioned_job(
    ingest_job, hour_of_day=_SETTINGS.daily_schedule_hour, minute_of_hour=30
)


@dg.schedule(
    job=analysis_job,
    cron_schedule=f"30 {_SETTINGS.daily_schedule_hour + 1} * * *",
    execution_timezone=project_timezone(_SETTINGS.catalog_path),
)
def daily_analysis_schedule(context: dg.ScheduleEvaluationContext):
    """One run per experiment partition (new ones included), once per day each."""
    day = context.scheduled_execution_time.date().isoformat()
    keys = context.instance.get_dynamic_partitions(experiment_partitions.name)
    return [dg.RunRequest(run_key=f"{key}:{day}", partition_key=key) for key in sorted(keys)]


def _every(minutes: int) -> str:
    return f"*/{minutes} * * * *" if minutes < 60 else f"0 */{max(1, minutes // 60)} * * *"


guardrail_metrics_schedule = dg.ScheduleDefinition(
    name="guardrail_metrics_schedule",
    job=guardrail_job,
    cron_schedule=_every(_SETTINGS.guardrail_interval_minutes),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
