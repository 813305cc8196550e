"""The engine the settings name: `engine: duckdb | spark` in config/pipeline.yaml.

Two ways in. `open_engine(settings)` is for library callers: it opens the warehouse or a
Spark session and closes (stops) it on exit. `transform_engine` is for the Dagster
assets, which already hold the DuckDB warehouse: DuckDB runs the transforms on that very
connection; Spark reads the warehouse's inputs (exported to Parquet when `inputs` is set
and they changed) and keeps its session for the life of the process, because starting one
costs a minute and every asset of a run needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from exp_pipeline.engines.base import DuckDBEngine, Engine
from exp_pipeline.settings import PipelineSettings, SparkSettings
from exp_pipeline.warehouse.connection import open_warehouse


@contextmanager
def open_engine(settings: PipelineSettings) -> Iterator[Engine]:
    """The configured engine, its inputs registered; closed (or stopped) on exit."""
    if settings.engine == "duckdb":
        with open_warehouse(settings.warehouse_path) as con:
            yield DuckDBEngine(con)
        return
    engine = _spark_engine(settings.spark, settings.home)
    try:
        yield engine
    finally:
        engine.spark.stop()


@contextmanager
def transform_engine(
    engine: str, spark: SparkSettings, home: Path, con: duckdb.DuckDBPyConnection
) -> Iterator[Engine]:
    """The engine an asset runs its transforms on, beside the open warehouse `con`.

    On Spark, when the block ends without an error, every experiment's tables the engine
    rebuilt are copied back into `con` (`engines.transfer.copy_rebuilt`), so everything
    downstream reads DuckDB as before; a failed block copies nothing.
    """
    if engine == "duckdb":
        yield DuckDBEngine(con)
        return
    from exp_pipeline.engines.transfer import copy_rebuilt, refresh_inputs

    if spark.inputs:
        refresh_inputs(con, home / spark.inputs)
    spark_engine = _spark_engine(spark, home)
    yield spark_engine
    copy_rebuilt(spark_engine, con)


def _spark_engine(config: SparkSettings, home: Path) -> Engine:
    """A SparkEngine on the configured (or the process's running) session, inputs registered."""
    from exp_pipeline.engines.spark import SparkEngine, spark_session

    spark = spark_session(config.master, config.options)
    engine = SparkEngine(spark)
    if config.database:
        spark.sql("CREATE DATABASE IF NOT EXISTS IDENTIFIER(:db)", args={"db": config.database})
        spark.catalog.setCurrentDatabase(config.database)
    if config.inputs:
        engine.register_parquet_inputs(home / config.inputs)  # an absolute path stays absolute
    else:
        engine.register_views()
    return engine
