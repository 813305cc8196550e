"""Keeps the `experiments` dynamic partitions in line with the control database.

Experiments started or deleted outside the catalog asset (through the CLI, or by another
process writing the control database) appear in, or leave, the UI's partition list on the
next tick. The sensor reads only the control database, never the DuckDB warehouse.
"""

import dagster as dg

from assets.partitions import experiment_partitions
from assets.resources import ControlDatabaseResource
from exp_pipeline.control.queries import analysable_experiment_keys


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def experiment_partitions_sensor(
    context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource
) -> dg.SensorResult:
    """Add partitions for started experiments; remove those of deleted ones."""
    with control_db.database() as db, db.session() as session:
        wanted = set(analysable_experiment_keys(session))
    existing = set(context.instance.get_dynamic_partitions(experiment_partitions.name))
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if wanted - existing:
        requests.append(experiment_partitions.build_add_request(sorted(wanted - existing)))
    if existing - wanted:
        requests.append(experiment_partitions.build_delete_request(sorted(existing - wanted)))
    return dg.SensorResult(dynamic_partitions_requests=requests)
