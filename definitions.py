"""The composition root: the one Definitions object, and running the graph in-process.

This is the only module that imports both `assets` and `sensors`. Dagster loads it as the
code location (workspace.yaml); the CLI calls `materialize_graph` to run the same graph
in-process on the same Dagster home that `dagster dev` shows.
"""

import dagster as dg

from assets import (
    ALL_ASSETS,
    ANALYSIS_ASSETS,
    experiment_catalog,
    experiment_definitions,
    flags_snapshot,
    guardrail_metrics,
    raw_events,
)
from assets.partitions import experiment_partitions
from assets.resources import build_resources
from assets.settings import DEFINITION_SETTINGS
from exp_pipeline.settings import PipelineSettings
from sensors import ALL_JOBS, ALL_SCHEDULES, ALL_SENSORS
from sensors.guardrails import guardrail_sensor


def build_definitions(settings: PipelineSettings) -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=ALL_JOBS,
        schedules=ALL_SCHEDULES,
        sensors=ALL_SENSORS,
        resources=build_resources(settings),
    )


defs = build_definitions(DEFINITION_SETTINGS)


def dagster_instance(settings: PipelineSettings) -> dg.DagsterInstance:
    """The persistent Dagster instance under the pipeline home (what `make ui` opens)."""
    return dg.DagsterInstance.from_config(str(settings.prepare_dagster_home()))


def materialize_graph(
    settings: PipelineSettings,
    partition_keys: list[str],
    instance: dg.DagsterInstance | None = None,
    log_level: str = "DEBUG",
) -> list[dg.ExecuteInProcessResult]:
    """Materialise the whole graph in-process: definitions, the landing days given, then
    every experiment partition.

    The days run as one single-run backfill (a partition range), so loading many days
    costs one run; each experiment is one run of the analysis assets. Raises if a run
    fails, with Dagster's error. `log_level` sets the console logger only; every event
    still reaches the instance, so the UI shows it all.
    """
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    resources = build_resources(settings)
    instance = instance or dagster_instance(settings)
    results = [
        dg.materialize(
            [experiment_catalog, experiment_definitions],
            resources=resources,
            instance=instance,
            run_config=run_config,
        )
    ]
    if partition_keys:
        keys = sorted(partition_keys)
        results.append(
            dg.materialize(
                [raw_events],
                resources=resources,
                instance=instance,
                run_config=run_config,
                tags={
                    "dagster/asset_partition_range_start": keys[0],
                    "dagster/asset_partition_range_end": keys[-1],
                },
            )
        )
    for key in sorted(instance.get_dynamic_partitions(experiment_partitions.name)):
        results.append(
            dg.materialize(
                ANALYSIS_ASSETS,
                partition_key=key,
                resources=resources,
                instance=instance,
                run_config=run_config,
            )
        )
    results.append(
        dg.materialize(
            [guardrail_metrics, flags_snapshot],
            resources=resources,
            instance=instance,
            run_config=run_config,
        )
    )
    return results


def tick_guardrail_sensor(
    settings: PipelineSettings, instance: dg.DagsterInstance | None = None
) -> dg.SensorResult:
    """Evaluate the guardrail sensor once, as the daemon would, on the same stores."""
    instance = instance or dagster_instance(settings)
    with dg.build_sensor_context(instance=instance, resources=build_resources(settings)) as context:
        return guardrail_sensor(context)


def publish_flags_snapshot(
    settings: PipelineSettings, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    """Materialise `flags_snapshot` alone, as its sensor does after a decision."""
    return dg.materialize(
        [flags_snapshot],
        resources=build_resources(settings),
        instance=instance or dagster_instance(settings),
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
