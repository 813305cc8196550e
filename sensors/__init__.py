"""Dagster sensors and schedules."""

from sensors.experiment_partitions import experiment_partitions_sensor
from sensors.flags import flags_snapshot_job, flags_snapshot_sensor
from sensors.guardrails import guardrail_sensor
from sensors.schedules import (
    analysis_job,
    daily_analysis_schedule,
    daily_ingest_schedule,
    guardrail_job,
    guardrail_metrics_schedule,
    ingest_job,
)

ALL_SCHEDULES = [daily_ingest_schedule, daily_analysis_schedule, guardrail_metrics_schedule]
ALL_SENSORS = [experiment_partitions_sensor, guardrail_sensor, flags_snapshot_sensor]
ALL_JOBS = [ingest_job, analysis_job, guardrail_job, flags_snapshot_job]

__all__ = ["ALL_JOBS", "ALL_SCHEDULES", "ALL_SENSORS"]
