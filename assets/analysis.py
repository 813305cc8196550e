"""Experiment-scoped analysis assets: exposures, conversions, metrics and results.

Each asset is partitioned by experiment key and replaces that experiment's rows in one
transaction, so materialising one experiment never touches another and re-running is
idempotent. They read every raw_events partition and the definitions snapshot.

The heavy transforms (exposures, conversions, funnel and trend aggregates) run on the
configured engine (`transforms`: DuckDB, or Spark with its rows copied back into the
warehouse); the results and checks read the warehouse (docs/engines.md).
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import duckdb

from assets.catalog import experiment_definitions
from assets.ingest import raw_events
from assets.metadata import check_result, counts_table, records_table, schema_from_ddl
from assets.partitions import experiment_partitions
from assets.resources import (
    DUCKDB_POOL,
    SamplingResource,
    TransformEngineResource,
    WarehouseResource,
)
from exp_pipeline.analysis.context import build_subject_context
from exp_pipeline.analysis.conversions import build_conversions
from exp_pipeline.analysis.definitions import ExperimentDefinition, read_experiment
from exp_pipeline.analysis.exposures import build_exposures, read_exposure_summary
from exp_pipeline.analysis.funnels import build_funnel_metrics
from exp_pipeline.analysis.group_exposures import read_group_exposure_summaries
from exp_pipeline.analysis.health import (
    exposure_freshness_check,
    multiple_variant_check,
    srm_check,
)
from exp_pipeline.analysis.results import build_experiment_results
from exp_pipeline.analysis.schema import TABLES
from exp_pipeline.analysis.trends import build_trend_metrics
from exp_pipeline.report.model_tables import model_tables
from exp_pipeline.report.plots import metric_plots
from exp_pipeline.report.render import markdown_image
from exp_pipeline.report.segment_tables import segment_tables
from exp_pipeline.reporting import interval_text, p_values, variant_measures, verdict


def analysis_asset(group: str, table: str, **kwargs):
    """An experiment-partitioned DuckDB asset of stage `group`, documented from its DDL."""
    return dg.asset(
        partitions_def=experiment_partitions,
        pool=DUCKDB_POOL,
        group_name=group,
        kinds={"duckdb"},
        metadata={"dagster/column_schema": schema_from_ddl(TABLES[table]), "table": table},
        **kwargs,
    )


def run_as_of(context: dg.AssetExecutionContext) -> datetime:
    """The run's creation time: where an open-ended window ends, the same for every asset."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.create_timestamp is None:
        return datetime.now(UTC)
    return record.create_timestamp.astimezone(UTC)


def experiment_for(
    context: dg.AssetExecutionContext, con: duckdb.DuckDBPyConnection, as_of: datetime
) -> ExperimentDefinition:
    """The partition's experiment, its open-ended window closed at the run's `as_of`."""
    return read_experiment(con, context.partition_key, as_of)


def window_metadata(experiment: ExperimentDefinition) -> dict[str, object]:
    return {
        "window_start_utc": experiment.start_utc.isoformat(),
        "window_end_utc": experiment.end_utc.isoformat(),
        "open_ended": experiment.open_ended,
        "timezone": experiment.timezone,
    }


@analysis_asset(
    "exposure",
    "exposures",
    deps=[
        dg.AssetDep(raw_events, partition_mapping=dg.AllPartitionMapping()),
        experiment_definitions,
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "multiple_variant_subjects",
            asset="exposures",
            description="At most 1% of subjects with a flag signal seen in two or more variants.",
        ),
        dg.AssetCheckSpec(
            "exposure_freshness",
            asset="exposures",
            description="A running experiment's newest first exposure is under 48 hours old.",
        ),
    ],
)
def exposures(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    transforms: TransformEngineResource,
) -> dg.MaterializeResult:
    """Subjects in the experiment: variant, first exposure (UTC and local), source.

    First touch inside the window; bots, Do-Not-Track, out-of-window, unknown-variant,
    multi-variant and flagless subjects are excluded and counted by reason.
    """
    as_of = run_as_of(context)
    with warehouse.connect() as con:
        experiment = experiment_for(context, con, as_of)
        with transforms.open(con) as engine:
            summary = build_exposures(engine, experiment)
        groups = read_group_exposure_summaries(con, experiment)  # of grouped metrics
        freshness = exposure_freshness_check(con, experiment, as_of)
    return dg.MaterializeResult(
        check_results=[
            check_result(
                "multiple_variant_subjects",
                multiple_variant_check(summary.excluded["multiple_variants"], summary.flagged),
                dg.AssetCheckSeverity.ERROR,
            ),
            check_result("exposure_freshness", freshness, dg.AssetCheckSeverity.WARN),
        ],
        metadata={
            "exposures_by_variant": counts_table(summary.exposures, "variant"),
            "excluded_by_reason": counts_table(summary.excluded, "reason"),
            "exposed_subjects": summary.total,
            "excluded_subjects": sum(summary.excluded.values()),
            **{
                f"{group}_{name}": counts_table(counts, label)
                for group, g in groups.items()
                for name, counts, label in (
                    ("exposures_by_variant", g.exposures, "variant"),
                    ("excluded_by_reason", g.excluded, "reason"),
                )
            },
            **window_metadata(experiment),
            "dagster/row_count": summary.total,
        },
    )


@analysis_asset("exposure", "conversions", deps=[exposures])
def conversions(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    transforms: TransformEngineResource,
) -> dg.MaterializeResult:
    """Per exposed subject and metric: first conversion, event count, value, funnel step."""
    with warehouse.connect() as con:
        experiment = experiment_for(context, con, run_as_of(context))
        with transforms.open(con) as engine:
            rows = build_conversions(engine, experiment)
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


@analysis_asset("metrics", "funnel_metrics", deps=[conversions])
def funnel_metrics(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    transforms: TransformEngineResource,
) -> dg.MaterializeResult:
    """Per funnel metric and variant, the exposed subjects at each step."""
    with warehouse.connect() as con:
        experiment = experiment_for(context, con, run_as_of(context))
        with transforms.open(con) as engine:
            steps = build_funnel_metrics(engine, experiment)
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


@analysis_asset("metrics", "trend_metrics", deps=[exposures])
def trend_metrics(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    transforms: TransformEngineResource,
) -> dg.MaterializeResult:
    """Per trend metric and variant: event count, exposure and the daily series."""
    with warehouse.connect() as con:
        experiment = experiment_for(context, con, run_as_of(context))
        with transforms.open(con) as engine:
            series = build_trend_metrics(engine, experiment)
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


@analysis_asset("exposure", "subject_context", deps=[exposures])
def subject_context(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Per exposed subject, its `$set` attributes merged up to its first exposure: what
    the results' segment breakdowns read (docs/segments.md)."""
    with warehouse.connect() as con:
        experiment = experiment_for(context, con, run_as_of(context))
        subjects = build_subject_context(con, experiment)
    return dg.MaterializeResult(metadata={"subjects_with_context": subjects})


def _metric_table(metric: dict[str, Any]) -> dg.TableMetadataValue:
    """One metric's inline table: what an analyst compares across variants.

    The value is conversions, events, the value sum or the numerator; the rate or mean is
    the conversion rate, the mean, the ratio, or a trend's posterior mean.
    """
    rows = []
    for v in metric["variants"]:
        exposed, value, rate = variant_measures(metric, v)
        fixed, always_valid = p_values(metric, v["variant_key"])
        rows.append(
            {
                "variant": v["variant_key"],
                "exposures": exposed,
                "value": float(value),
                "rate_or_mean": rate if rate is not None else v.get("posterior", {}).get("mean"),
                "credible_interval_95": interval_text(v.get("credible_interval"), "{:.4g}".format),
                "probability_best": metric["probability"].get(v["variant_key"]),
                "probability_beats_control": v.get("probability_beats_control"),
                "lift_over_control_95": interval_text(v.get("lift_interval"), "{:+.1%}".format),
                "p_value_holm": fixed,
                "always_valid_p": always_valid,
            }
        )
    return records_table(
        rows,
        {
            "variant": "string",
            "exposures": "int",
            "value": "float",
            "rate_or_mean": "float",
            "credible_interval_95": "string",
            "probability_best": "float",
            "probability_beats_control": "float",
            "lift_over_control_95": "string",
            "p_value_holm": "string",
            "always_valid_p": "string",
        },
    )


def _frequentist_table(metric: dict[str, Any]) -> dg.TableMetadataValue:
    """Each treatment against control: the fixed-horizon test and the always-valid one."""
    rows = []
    for variant, block in metric.get("frequentist", {}).items():
        if "reason" in block:
            rows.append({"variant": variant, "method": f"not testable: {block['reason']}"})
            continue
        sequential = block["sequential"]
        rows.append(
            {
                "variant": variant,
                "method": block["method"],
                "effect": block["effect"],
                "ci_95": interval_text(block["ci"], "{:.4g}".format),
                "relative_effect": block["relative_effect"],
                "relative_ci_95": interval_text(block["relative_ci"], "{:+.1%}".format),
                "p_value": block["p_value"],
                "holm_p_value": block["holm_p_value"],
                "always_valid_p": sequential["p_value"],
                "confidence_sequence_95": interval_text(
                    sequential["confidence_sequence"], "{:.4g}".format
                ),
                "e_bh_adjusted": sequential["e_bh_adjusted"],
            }
        )
    types = {
        "variant": "string",
        "method": "string",
        "effect": "float",
        "ci_95": "string",
        "relative_effect": "float",
        "relative_ci_95": "string",
        "p_value": "float",
        "holm_p_value": "float",
        "always_valid_p": "float",
        "confidence_sequence_95": "string",
        "e_bh_adjusted": "float",
    }
    return records_table([{k: row.get(k) for k in types} for row in rows], types)


_WEB_COUNTER_TYPES = {
    "variant": "string",
    "impressions": "int",
    "cta_clicks": "int",
    "form_starts": "int",
    "form_submits": "int",
    "conversions": "int",
    "unique_sessions": "int",
    "conversion_rate": "float",
    "conversion_value_total": "float",
}


def _web_counters_table(counters: dict[str, dict[str, Any]]) -> dg.TableMetadataValue:
    rows = [{"variant": variant, **c} for variant, c in counters.items()]
    return records_table(rows, _WEB_COUNTER_TYPES)


# What a variant's rate is called in the headline numbers (trends have none).
_RATE_NAMES = {"funnel": "conversion_rate", "continuous": "mean", "ratio": "ratio"}


def _headlines(metric: dict[str, Any]) -> dict[str, float]:
    """Numeric entries, keyed stably, so the UI plots them across materialisations.

    A figure the document leaves undefined (None) is left out rather than plotted as 0.
    """
    key = metric["metric_key"]
    numbers: dict[str, float | None] = {f"{key}.expected_loss": metric["expected_loss"]}
    for v in metric["variants"]:
        prefix = f"{key}.{v['variant_key']}"
        numbers[f"{prefix}.probability_best"] = metric["probability"].get(v["variant_key"])
        rate = variant_measures(metric, v)[2]
        if rate is not None:
            numbers[f"{prefix}.{_RATE_NAMES[metric['kind']]}"] = rate
        block = metric.get("frequentist", {}).get(v["variant_key"], {})
        if "p_value" in block:
            numbers[f"{prefix}.p_value"] = block["p_value"]
            numbers[f"{prefix}.always_valid_p_value"] = block["sequential"]["p_value"]
    if metric["kind"] == "trend" and "phi" in metric.get("dispersion", {}):
        numbers[f"{key}.dispersion"] = metric["dispersion"]["phi"]
    return {name: value for name, value in numbers.items() if value is not None}


@analysis_asset(
    "results",
    "experiment_results",
    deps=[funnel_metrics, trend_metrics, subject_context],
    check_specs=[
        dg.AssetCheckSpec(
            "sample_ratio_mismatch",
            asset="experiment_results",
            blocking=True,
            description=(
                "Exposed subjects per variant match the configured allocation "
                "(chi-square; fails below p = 0.001: the results are not to be trusted)."
            ),
        )
    ],
)
def experiment_results(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sampling: SamplingResource
) -> dg.MaterializeResult:
    """Per metric: posteriors, probability to be best, expected loss, credible intervals,
    lift over control and the significance code (exact, deterministic).
    """
    as_of = run_as_of(context)
    with warehouse.connect() as con:
        experiment = experiment_for(context, con, as_of)
        document = build_experiment_results(con, experiment, as_of, sampling.settings())
        srm = srm_check(read_exposure_summary(con, experiment).exposures, experiment.allocation)
    metadata: dict[str, Any] = {}
    for metric in document["metrics"]:
        key = metric["metric_key"]
        metadata[f"{key}: results"] = _metric_table(metric)
        metadata[f"{key}: against control"] = _frequentist_table(metric)
        metadata[f"{key}: verdict"] = verdict(metric)
        for table in model_tables(metric):  # CUPED, revenue hurdle
            metadata[f"{key}: {table.title}"] = records_table(table.rows, table.columns)
            metadata[f"{key}: {table.title}: summary"] = table.summary
        if "reason" not in metric:
            metadata[f"{key}: plots"] = dg.MetadataValue.md(
                "\n\n".join(markdown_image(p.png, p.alt) for p in metric_plots(metric))
            )
        metadata.update(_headlines(metric))
    metadata["sample_ratio_p_value"] = document["sample_ratio_mismatch"]["p_value"]
    if document["web_counters"]:
        metadata["web counters"] = _web_counters_table(document["web_counters"])
    for table in segment_tables(document):  # breakdowns and pooled lifts per attribute
        metadata[table.title] = records_table(table.rows, table.columns)
        metadata[f"{table.title}: summary"] = table.summary
    metadata["e_bh_family_size"] = document["segments"]["e_bh_family_size"]
    if document["metrics"]:
        primary = document["metrics"][0]
        metadata["primary_metric"] = primary["metric_key"]
        metadata["primary_best_variant"] = primary["best_variant"]
        metadata["primary_significant"] = primary["significant"]
    metadata["document"] = dg.MetadataValue.json(document)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[check_result("sample_ratio_mismatch", srm, dg.AssetCheckSeverity.ERROR)],
    )
