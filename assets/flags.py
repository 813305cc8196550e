"""The `flags_snapshot` asset: the versioned JSON document applications evaluate locally."""

import dagster as dg

from assets.metadata import records_table
from assets.resources import ControlDatabaseResource, PipelineSettingsResource
from exp_pipeline.flags import build_snapshot, write_snapshot


@dg.asset(group_name="flags", kinds={"json"})
def flags_snapshot(
    context: dg.AssetExecutionContext,
    control_db: ControlDatabaseResource,
    pipeline: PipelineSettingsResource,
) -> dg.MaterializeResult:
    """Every live flag's status, seed, traffic, variants and served variant, as of the
    newest decision; written atomically so a polling application never reads half a file.

    Refreshed by `flags_snapshot_sensor` whenever a lifecycle or guardrail decision (or the
    kill switch) changes the control database. Format and hashing: docs/flags.md.
    """
    with control_db.database() as db, db.session() as session:
        snapshot = build_snapshot(session)
    path = write_snapshot(snapshot, pipeline.flags_snapshot_path)
    context.log.info(f"flags snapshot version {snapshot['version']} written to {path}")
    rows = [
        {
            "flag": key,
            "experiment": entry["experiment_key"],
            "status": entry["status"],
            "served_variant": entry["served_variant"] or "",
        }
        for key, entry in snapshot["flags"].items()
    ]
    return dg.MaterializeResult(
        metadata={
            "version": snapshot["version"],
            "decided_at": snapshot["decided_at"] or "",
            "experiments_enabled": snapshot["experiments_enabled"],
            "flags": records_table(
                rows,
                {
                    "flag": "string",
                    "experiment": "string",
                    "status": "string",
                    "served_variant": "string",
                },
            ),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
