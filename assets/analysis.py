"""Experiment-scoped analysis assets: exposures, conversions, metrics and results.

Each asset is partitioned by experiment key and replaces that experiment's rows in one
transaction, so materialising one experiment never touches another and re-running is
idempotent. They read every raw_events partition and the definitions snapshot.
"""

from datetime import UTC, datetime

import dagster as dg

from assets.catalog import experiment_definitions
from assets.ingest import raw_events
from assets.metadata import counts_table, records_table
from assets.partitions import experiment_partitions
from assets.resources import DUCKDB_POOL, WarehouseResource
from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.definitions import ExperimentDefinition, read_experiment
from exp_pipeline.analysis.exposures import build_exposures
from exp_pipeline.analysis.funnels import build_funnel_metrics
from exp_pipeline.analysis.results import build_experiment_results
from exp_pipeline.analysis.trends import build_trend_metrics

ANALYSIS = {
    "partitions_def": experiment_partitions,
    "pool": DUCKDB_POOL,
    "group_name": "analysis",
    "kinds": {"duckdb"},
}


def run_as_of(context: dg.AssetExecutionContext) -> datetime:
    """The run's creation time: where an open-ended window ends, the same for every asset."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.create_timestamp is None:
        return datetime.now(UTC)
    return record.create_timestamp.astimezone(UTC)


def experiment_for(context: dg.AssetExecutionContext, con) -> ExperimentDefinition:
    return read_experiment(con, context.partition_key, run_as_of(context))


def window_metadata(experiment: ExperimentDefinition) -> dict[str, object]:
    return {
        "window_start_utc": experiment.start_utc.isoformat(),
        "window_end_utc": experiment.end_utc.isoformat(),
        "open_ended": experiment.open_ended,
        "timezone": experiment.timezone,
    }


@dg.asset(
    deps=[
        dg.AssetDep(raw_events, partition_mapping=dg.AllPartitionMapping()),
        experiment_definitions,
    ],
    **ANALYSIS,
)
def exposures(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Subjects in the experiment: variant, first exposure (UTC and local), source.

    First touch inside the window; bots, Do-Not-Track, out-of-window, unknown-variant,
    multi-variant and flagless subjects are excluded and counted by reason.
    """
    with warehouse.connect() as con:
        experiment = experiment_for(context, con)
        summary = build_exposures(con, experiment)
    return dg.MaterializeResult(
        metadata={
            "exposures_by_variant": counts_table(summary.exposures, "variant"),
            "excluded_by_reason": counts_table(summary.excluded, "reason"),
            "exposed_subjects": summary.total,
            "excluded_subjects": sum(summary.excluded.values()),
            **window_metadata(experiment),
            "dagster/row_count": summary.total,
        }
    )


@dg.asset(deps=[exposures], **ANALYSIS)
def conversions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Per exposed subject and metric: first conversion, event count, value, funnel step."""
    with warehouse.connect() as con:
        experiment = experiment_for(context, con)
        rows = build_conversions(con, experiment)
        converted = dict(
            con.execute(
                "SELECT metric_key, count(first_conversion_utc) FROM conversions "
                "WHERE experiment_key = ? GROUP BY metric_key ORDER BY metric_key",
                [experiment.key],
            ).fetchall()
        )
    return dg.MaterializeResult(
        metadata={
            "converted_subjects_by_metric": counts_table(converted, "metric"),
            "dagster/row_count": rows,
        }
    )


@dg.asset(deps=[conversions], **ANALYSIS)
def funnel_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Per funnel metric and variant, the exposed subjects at each step."""
    with warehouse.connect() as con:
        experiment = experiment_for(context, con)
        steps = build_funnel_metrics(con, experiment)
    rows = [
        {"metric": metric, "variant": variant, "step_counts": ", ".join(map(str, counts))}
        for metric, by_variant in steps.items()
        for variant, counts in by_variant.items()
    ]
    return dg.MaterializeResult(
        metadata={
            "step_counts": records_table(
                rows, {"metric": "string", "variant": "string", "step_counts": "string"}
            ),
            "funnel_metrics": len(steps),
        }
    )


@dg.asset(deps=[exposures], **ANALYSIS)
def trend_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Per trend metric and variant: event count, exposure and the daily series."""
    with warehouse.connect() as con:
        experiment = experiment_for(context, con)
        series = build_trend_metrics(con, experiment)
    rows = [
        {"metric": metric, "variant": variant, "count": s.count, "exposure": s.exposure}
        for metric, by_variant in series.items()
        for variant, s in by_variant.items()
    ]
    return dg.MaterializeResult(
        metadata={
            "totals": records_table(
                rows, {"metric": "string", "variant": "string", "count": "int", "exposure": "int"}
            ),
            "days": len(experiment.local_days()),
            "trend_metrics": len(series),
        }
    )


@dg.asset(deps=[funnel_metrics, trend_metrics], **ANALYSIS)
def experiment_results(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Per metric: posteriors, probability to be best, expected loss, credible intervals,
    lift over control and the significance code (exact, deterministic).
    """
    with warehouse.connect() as con:
        experiment = experiment_for(context, con)
        document = build_experiment_results(con, experiment, run_as_of(context))
    rows = [
        {
            "metric": m["metric_key"],
            "variant": v["variant_key"],
            "probability_best": m["probability"][v["variant_key"]],
            "credible_interval": "[{:.4g}, {:.4g}]".format(*v["credible_interval"]),
            "significance": m["significance_code"],
        }
        for m in document["metrics"]
        for v in m["variants"]
    ]
    primary = document["metrics"][0] if document["metrics"] else None
    metadata: dict[str, object] = {
        "results": records_table(
            rows,
            {
                "metric": "string",
                "variant": "string",
                "probability_best": "float",
                "credible_interval": "string",
                "significance": "string",
            },
        ),
        "document": dg.MetadataValue.json(document),
    }
    if primary is not None:
        metadata["primary_metric"] = primary["metric_key"]
        metadata["primary_best_variant"] = primary["best_variant"]
        metadata["primary_probability_best"] = primary["probability"][primary["best_variant"]]
        metadata["primary_significant"] = primary["significant"]
    return dg.MaterializeResult(metadata=metadata)
