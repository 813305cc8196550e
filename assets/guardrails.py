"""The `guardrail_metrics` asset: per-variant guardrail aggregates into the control DB.

It is the only guardrail component that opens DuckDB (in the writer pool); the
aggregates run on the configured engine (DuckDB or Spark). The guardrail sensor reads
what it writes from the control database.
"""

from datetime import UTC, datetime

import dagster as dg

from assets.ingest import raw_events
from assets.metadata import records_table
from assets.resources import (
    DUCKDB_POOL,
    ControlDatabaseResource,
    PipelineSettingsResource,
    TransformEngineResource,
    WarehouseResource,
)
from exp_pipeline.guardrails.check import snapshot_guardrails


@dg.asset(
    deps=[dg.AssetDep(raw_events, partition_mapping=dg.AllPartitionMapping())],
    pool=DUCKDB_POOL,
    group_name="guardrails",
    kinds={"duckdb", "sql"},
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn("experiment_id", "integer", description="the experiment"),
                dg.TableColumn("computed_at", "timestamptz", description="when computed"),
                dg.TableColumn(
                    "payload",
                    "json",
                    description="data end, health counts, per-guardrail per-variant "
                    "numerators and denominators over the observation window",
                ),
                dg.TableColumn(
                    "sequential_state", "json", description="always-valid p-values between looks"
                ),
            ]
        ),
        "table": "guardrail_snapshots (control database)",
    },
)
def guardrail_metrics(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    control_db: ControlDatabaseResource,
    pipeline: PipelineSettingsResource,
    transforms: TransformEngineResource,
) -> dg.MaterializeResult:
    """Guardrail numerators and denominators per running experiment and variant.

    Computed over each guardrail's trailing observation window (ending at the freshest
    flagged event), with the data-health counts the sensor checks first, on the
    configured engine, and stored in the control database with the time they were
    computed.
    """
    now = datetime.now(UTC)
    with (
        warehouse.connect() as con,
        transforms.open(con) as engine,
        control_db.database() as db,
    ):
        targets = snapshot_guardrails(
            engine, db, now, limit=pipeline.guardrail_max_experiments_per_tick
        )
    context.log.info(f"guardrail aggregates for {len(targets)} running experiment(s)")
    return dg.MaterializeResult(
        metadata={
            "experiments": records_table(
                [{"experiment": t.key, "guardrails": len(t.guardrails)} for t in targets],
                {"experiment": "string", "guardrails": "int"},
            ),
            "computed_at": now.isoformat(),
            "running_experiments_guarded": len(targets),
        }
    )
