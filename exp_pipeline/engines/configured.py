"""The engine the settings name: `engine: duckdb | spark` in config/pipeline.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from exp_pipeline.engines.base import DuckDBEngine, Engine
from exp_pipeline.settings import PipelineSettings
from exp_pipeline.warehouse.connection import open_warehouse


@contextmanager
def open_engine(settings: PipelineSettings) -> Iterator[Engine]:
    """The configured engine, its inputs registered; closed (or stopped) on exit."""
    if settings.engine == "duckdb":
        with open_warehouse(settings.warehouse_path) as con:
            yield DuckDBEngine(con)
        return
    from exp_pipeline.engines.spark import SparkEngine, spark_session

    config = settings.spark
    spark = spark_session(config.master, config.options)
    try:
        engine = SparkEngine(spark)
        if config.database:
            spark.sql("CREATE DATABASE IF NOT EXISTS IDENTIFIER(:db)", args={"db": config.database})
            spark.catalog.setCurrentDatabase(config.database)
        if config.inputs:
            inputs = settings.home / config.inputs  # an absolute path stays absolute
            engine.register_parquet_inputs(inputs)
        else:
            engine.register_views()
        yield engine
    finally:
        spark.stop()
