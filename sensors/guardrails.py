"""The guardrail sensor: evaluates the stored aggregates and writes decisions back.

It reads only the control database (never DuckDB, which a materialisation may hold), with
a short busy timeout and a cap on experiments per tick, so a tick stays well within
Dagster's 60-second limit. Dagster may repeat a tick whose cursor it did not save; the
decisions are idempotent on their own (a unique decision key per look, a compare-and-set
on the status), so a repeated tick changes nothing.
"""

import json
from datetime import UTC, datetime

import dagster as dg

from assets.resources import ControlDatabaseResource
from assets.settings import DEFINITION_SETTINGS as _SETTINGS
from exp_pipeline.guardrails.check import evaluate_snapshots

SENSOR_BUSY_TIMEOUT_S = 5.0


@dg.sensor(
    minimum_interval_seconds=_SETTINGS.guardrail_interval_minutes * 60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Pause or roll back running experiments whose guardrails are breached.",
)
def guardrail_sensor(
    context: dg.SensorEvaluationContext, control_db: ControlDatabaseResource
) -> dg.SensorResult:
    now = datetime.now(UTC)
    with control_db.database(busy_timeout_s=SENSOR_BUSY_TIMEOUT_S) as db:
        decisions = evaluate_snapshots(db, now, limit=_SETTINGS.guardrail_max_experiments_per_tick)
    for decision in decisions:
        context.log.info(
            f"{decision.experiment_key}: {decision.outcome}"
            + (f" ({decision.reason})" if decision.reason else "")
        )
    acted = [d.experiment_key for d in decisions if d.outcome in ("paused", "rolled_back")]
    cursor = json.dumps(
        {"last_tick": now.isoformat(), "checked": len(decisions), "acted_on": acted}
    )
    if not decisions:
        return dg.SensorResult(cursor=cursor, skip_reason="no running experiment with guardrails")
    return dg.SensorResult(cursor=cursor)
