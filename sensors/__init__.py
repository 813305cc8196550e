"""Dagster sensors and schedules."""

from sensors.experiment_partitions import experiment_partitions_sensor
from sensors.schedules import (
    analysis_job,
    daily_analysis_schedule,
    daily_ingest_schedule,
    ingest_job,
)

ALL_SCHEDULES = [daily_ingest_schedule, daily_analysis_schedule]
ALL_SENSORS = [experiment_partitions_sensor]
ALL_JOBS = [ingest_job, analysis_job]

__all__ = ["ALL_JOBS", "ALL_SCHEDULES", "ALL_SENSORS"]
