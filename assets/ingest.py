"""The `raw_events` asset: landing files of each UTC day into the DuckDB warehouse."""

import dagster as dg

from assets.metadata import check_result, counts_table, schema_from_ddl
from assets.partitions import daily_landing_partitions
from assets.resources import DUCKDB_POOL, PipelineSettingsResource, WarehouseResource
from exp_pipeline.analysis.health import quarantine_check
from exp_pipeline.warehouse.loader import landing_files_for_day, load_files
from exp_pipeline.warehouse.schema import EVENTS_COLUMNS


@dg.asset(
    partitions_def=daily_landing_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
    group_name="ingest",
    kinds={"duckdb"},
    metadata={"dagster/column_schema": schema_from_ddl(EVENTS_COLUMNS)},
    check_specs=[
        dg.AssetCheckSpec(
            "quarantine_share",
            asset="raw_events",
            description="At most 1% of the rows read in a load go to quarantine.",
        )
    ],
)
def raw_events(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    pipeline: PipelineSettingsResource,
) -> dg.MaterializeResult:
    """Raw product events, typed, deduplicated, with flag signals extracted.

    Loads every landing file under `landing/<day>/` for the partition's days into the
    `events` table, its flag signals into `flag_assignments`, and rejected rows into
    `quarantine` with the reason. Re-materialising a day is a no-op for files already
    loaded (tracked by SHA-256) and for events already present (dedup on event_id or a
    content hash).
    """
    files = [
        path
        for day in context.partition_keys
        for path in landing_files_for_day(pipeline.landing, day)
    ]
    if not files:
        context.log.warning(
            f"no landing files under {pipeline.landing} for {', '.join(context.partition_keys)}"
        )
    with warehouse.connect() as con:
        report = load_files(con, files, bot_pattern=pipeline.bot_user_agent_pattern)
        total_rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    summary = report.summary()
    for error in summary["errors"]:
        context.log.warning(error)
    quarantine = quarantine_check(summary["rows_read"], summary["quarantined_total"])
    return dg.MaterializeResult(
        check_results=[check_result("quarantine_share", quarantine, dg.AssetCheckSeverity.WARN)],
        metadata={
            "files_loaded": summary["files_loaded"],
            "files_already_loaded": summary["files_already_loaded"],
            "files_rejected": summary["files_rejected"],
            "rows_read": summary["rows_read"],
            "rows_loaded": summary["rows_loaded"],
            "duplicates_skipped": summary["duplicates_skipped"],
            "rows_quarantined": summary["quarantined_total"],
            "quarantined_by_reason": counts_table(summary["quarantined"], "reason"),
            "bot_events": summary["bot_events"],
            "dnt_events": summary["dnt_events"],
            "flag_assignments": summary["flag_assignments"],
            "dagster/row_count": int(total_rows),
        },
    )
