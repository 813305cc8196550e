"""Experiment definitions: the YAML catalog into the control database, then into DuckDB."""

from datetime import UTC, datetime

import dagster as dg

from assets.metadata import records_table, schema_from_ddl
from assets.partitions import sync_experiment_partitions
from assets.resources import (
    DUCKDB_POOL,
    ControlDatabaseResource,
    PipelineSettingsResource,
    WarehouseResource,
)
from exp_pipeline.catalog import load_catalog
from exp_pipeline.control.queries import analysable_experiment_keys, describe, live_experiments
from exp_pipeline.control.sync import sync_catalog
from exp_pipeline.warehouse.definitions_snapshot import TABLES, write_definitions_snapshot


@dg.asset(group_name="ingest", kinds={"yaml", "sql"})
def experiment_catalog(
    context: dg.AssetExecutionContext,
    control_db: ControlDatabaseResource,
    pipeline: PipelineSettingsResource,
) -> dg.MaterializeResult:
    """The experiment catalog (config/experiments.yaml), validated and synced.

    Upserts every experiment into the control database in one transaction; an invalid
    catalog fails the run with a message naming the experiment and field, and changes
    nothing.
    """
    catalog = load_catalog(pipeline.catalog_path)
    with control_db.database() as db:
        with db.session() as session:
            report = sync_catalog(session, catalog)
        with db.session() as session:
            keys = analysable_experiment_keys(session)
    added, removed = sync_experiment_partitions(context.instance, keys)
    for line in report.lines():
        context.log.info(line)
    return dg.MaterializeResult(
        metadata={
            "experiments": len(catalog.experiments),
            "created": len(report.created),
            "updated": len(report.updated),
            "started": len(report.started),
            "experiment_partitions_added": dg.MetadataValue.json(added),
            "experiment_partitions_removed": dg.MetadataValue.json(removed),
            "changes": dg.MetadataValue.md("\n".join(f"- {line}" for line in report.lines())),
            "catalog_path": dg.MetadataValue.path(pipeline.catalog_path),
        }
    )


@dg.asset(
    deps=[experiment_catalog],
    pool=DUCKDB_POOL,
    group_name="ingest",
    kinds={"duckdb"},
    metadata={
        "dagster/column_schema": schema_from_ddl(TABLES["experiment_definitions"]),
        "tables": ", ".join(TABLES),
    },
)
def experiment_definitions(
    control_db: ControlDatabaseResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """A snapshot of the control database's experiments for the rest of the graph.

    Tables `experiment_definitions`, `experiment_variants`, `experiment_metrics` and
    `experiment_guardrails` in the warehouse, replaced together, with windows as UTC
    instants, so SQL transforms join events to experiments without reading the
    control database.
    """
    with control_db.database() as db, db.session() as session:
        experiments = [describe(e) for e in live_experiments(session)]
    with warehouse.connect() as con:
        write_definitions_snapshot(con, experiments, datetime.now(UTC))
    rows = [
        {
            "key": e["key"],
            "status": e["status"],
            "flag": e["feature_flag_key"],
            "start": e["window"]["start"] or "",
            "end": e["window"]["end"] or "",
            "timezone": e["timezone"],
            "variants": ", ".join(
                f"{v['key']} {v['rollout_percentage']:g}%" for v in e["variants"]
            ),
            "primary_metric": e["metrics"][0]["key"],
        }
        for e in experiments
    ]
    types = dict.fromkeys(rows[0] if rows else ["key"], "string")
    return dg.MaterializeResult(
        metadata={
            "experiments": records_table(rows, types),
            "running": sum(e["status"] == "running" for e in experiments),
            "dagster/row_count": len(experiments),
        }
    )
