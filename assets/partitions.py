"""Partition definitions shared by the assets and the schedules."""

import dagster as dg

from assets.settings import DEFINITION_SETTINGS

# Landing days are UTC calendar days: `landing/<YYYY-MM-DD>/` holds what arrived that day.
# A day's partition exists once the day is over, so the daily schedule loads yesterday;
# files of the current day can be loaded early with `exp-pipeline events load`.
daily_landing_partitions = dg.DailyPartitionsDefinition(
    start_date=DEFINITION_SETTINGS.partitions_start_date.isoformat(),
    timezone="UTC",
)

# Experiment-scoped assets: one partition per experiment key, registered by the
# experiment_catalog asset when it syncs and kept in line by the experiment_partitions
# sensor, so an analyst can materialise one experiment.
experiment_partitions = dg.DynamicPartitionsDefinition(name="experiments")


def sync_experiment_partitions(
    instance: dg.DagsterInstance, wanted: list[str]
) -> tuple[list[str], list[str]]:
    """Make the experiment partitions exactly `wanted`; return (added, removed) keys."""
    existing = set(instance.get_dynamic_partitions(experiment_partitions.name))
    added = sorted(set(wanted) - existing)
    removed = sorted(existing - set(wanted))
    if added:
        instance.add_dynamic_partitions(experiment_partitions.name, added)
    for key in removed:
        instance.delete_dynamic_partition(experiment_partitions.name, key)
    return added, removed
