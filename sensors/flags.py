"""Refreshes the flags snapshot whenever the control database's decisions change.

The snapshot version is the decision-log count, and the kill switch is a setting; the
cursor remembers both, and a change requests one run keyed by them, so a repeated tick
never rebuilds the same snapshot twice.
"""

import dagster as dg

from assets.resources import ControlDatabaseResource
from exp_pipeline.flags.snapshot import snapshot_state

flags_snapshot_job = dg.define_asset_job(
    "flags_snapshot_job",
    selection=dg.AssetSelection.assets("flags_snapshot"),
    description="Publish the flags snapshot applications evaluate.",
)


@dg.sensor(
    job=flags_snapshot_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def flags_snapshot_sensor(
    context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource
) -> dg.SensorResult:
    with control_db.database(busy_timeout_s=5.0) as db, db.session() as session:
        version, enabled = snapshot_state(session)
    state = f"{version}:{'on' if enabled else 'off'}"
    if state == context.cursor:
        return dg.SensorResult(skip_reason=f"no decision since snapshot state {state}")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"flags:{state}")], cursor=state)
