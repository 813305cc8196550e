"""Partition definitions shared by the assets and the schedules."""

import dagster as dg

from exp_pipeline.settings import PipelineSettings

# Landing days are UTC calendar days: `landing/<YYYY-MM-DD>/` holds what arrived that day.
# A day's partition exists once the day is over, so the daily schedule loads yesterday;
# files of the current day can be loaded early with `exp-pipeline events load`.
daily_landing_partitions = dg.DailyPartitionsDefinition(
    start_date=PipelineSettings.load().partitions_start_date.isoformat(),
    timezone="UTC",
)
