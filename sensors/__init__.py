"""Dagster sensors and schedules."""

from sensors.schedules import daily_ingest_schedule, ingest_job

ALL_SCHEDULES = [daily_ingest_schedule]
ALL_JOBS = [ingest_job]

__all__ = ["ALL_JOBS", "ALL_SCHEDULES", "daily_ingest_schedule", "ingest_job"]
