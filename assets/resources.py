"""Dagster resources wrapping the core library's stores.

Each resource only holds configuration (paths, a URL) and opens its store on demand,
so nothing touches DuckDB or the control database when Dagster loads the code location.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.engines.base import Engine
from exp_pipeline.engines.configured import transform_engine
from exp_pipeline.settings import CONTROL_DB_URL_ENV, PipelineSettings, SparkSettings
from exp_pipeline.stats.sampling_settings import SamplingSettings
from exp_pipeline.warehouse.connection import open_warehouse

# Every asset that opens the DuckDB warehouse runs in this pool (limit 1 in dagster.yaml):
# DuckDB admits one writing process at a time.
DUCKDB_POOL = "duckdb_writer"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB event warehouse."""

    path: str
    memory_limit: str | None = None
    temp_directory: str | None = None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(
            self.path, memory_limit=self.memory_limit, temp_directory=self.temp_directory
        ) as con:
            yield con


class ControlDatabaseResource(dg.ConfigurableResource):
    """The control database; its URL comes from the environment when it carries secrets."""

    url: str

    @contextmanager
    def database(self, busy_timeout_s: float = 30.0) -> Iterator[ControlDatabase]:
        """An open handle; sensors pass a short busy timeout to stay within their tick."""
        db = ControlDatabase(self.url, busy_timeout_s=busy_timeout_s)
        try:
            yield db
        finally:
            db.dispose()


class PipelineSettingsResource(dg.ConfigurableResource):
    """Where the catalog and landing files are, and what counts as a bot."""

    catalog_path: str
    landing_dir: str
    bot_user_agent_pattern: str
    guardrail_interval_minutes: int = 5
    guardrail_max_experiments_per_tick: int = 50
    flags_snapshot_path: str = ""

    @property
    def landing(self) -> Path:
        return Path(self.landing_dir)


SAMPLING_FIELDS = tuple(SamplingSettings.__dataclass_fields__)


class SamplingResource(dg.ConfigurableResource):
    """How the PyMC models sample (`sampling:` in pipeline.yaml; `SamplingSettings`)."""

    draws: int
    tune: int
    chains: int
    cores: int
    target_accept: float
    random_seed: int
    max_divergences: int

    def settings(self) -> SamplingSettings:
        return SamplingSettings(**{name: getattr(self, name) for name in SAMPLING_FIELDS})


class TransformEngineResource(dg.ConfigurableResource):
    """Where the heavy transforms run: `engine` and `spark:` of pipeline.yaml.

    `open` hands an asset the engine beside its open warehouse connection; on leaving the
    block, what Spark rebuilt is copied into DuckDB, where the results, reports and the UI
    read it (`engines.configured.transform_engine`).
    """

    engine: str = "duckdb"
    spark_json: str = "{}"  # SparkSettings as JSON: options are a free-form mapping
    home: str = "."

    @contextmanager
    def open(self, con: duckdb.DuckDBPyConnection) -> Iterator[Engine]:
        spark = SparkSettings.model_validate_json(self.spark_json)
        with transform_engine(self.engine, spark, Path(self.home), con) as engine:
            yield engine


def build_resources(settings: PipelineSettings) -> dict[str, dg.ConfigurableResource]:
    """Resources for `settings`; the control DB URL stays an EnvVar when it comes from one."""
    url = (
        dg.EnvVar(CONTROL_DB_URL_ENV)
        if os.environ.get(CONTROL_DB_URL_ENV)
        else settings.control_db_url
    )
    return {
        "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
        "control_db": ControlDatabaseResource(url=url),
        "pipeline": PipelineSettingsResource(
            catalog_path=str(settings.catalog_path),
            landing_dir=str(settings.landing_dir),
            bot_user_agent_pattern=settings.bot_user_agent_pattern,
            guardrail_interval_minutes=settings.guardrail_interval_minutes,
            guardrail_max_experiments_per_tick=settings.guardrail_max_experiments_per_tick,
            flags_snapshot_path=str(settings.flags_snapshot_path),
        ),
        "sampling": SamplingResource(**settings.sampling.to_dict()),
        "transforms": TransformEngineResource(
            engine=settings.engine,
            spark_json=settings.spark.model_dump_json(),
            home=str(settings.home),
        ),
    }
