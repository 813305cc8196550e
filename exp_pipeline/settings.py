"""Pipeline settings: where the stores are, where landing files arrive, what a bot is.

They come from `config/pipeline.yaml` and the environment. The environment wins, and
the control database URL comes only from it (`EXP_PIPELINE_CONTROL_DB_URL`), because it
may carry a password; without it the control database is a SQLite file in the home.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from exp_pipeline.control.db import sqlite_url
from exp_pipeline.errors import SettingsError
from exp_pipeline.stats.sampling_settings import SamplingSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOME_ENV = "EXP_PIPELINE_HOME"
CONTROL_DB_URL_ENV = "EXP_PIPELINE_CONTROL_DB_URL"
CONFIG_ENV = "EXP_PIPELINE_CONFIG"
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "pipeline.yaml"
DEFAULT_HOME = Path(".exp_pipeline")

# The Dagster instance config written into a fresh Dagster home. DuckDB admits one
# writing process, so the `duckdb_writer` pool (and any other) runs one op at a time.
DAGSTER_YAML = """\
# Written by exp-pipeline. DuckDB admits one writer: the `duckdb_writer` pool (and any
# other) runs one op at a time.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


class SparkSettings(BaseModel):
    """Where the Spark engine runs and what it reads (used only with `engine: spark`).

    `master` and `options` go to the SparkSession builder as they are (the session time
    zone is always UTC). `inputs` is a directory of Parquet files, one per warehouse input
    table (relative paths are under the home); without it the tables are read from
    `database` (or the session's current database) of the cluster's catalog.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    master: str = "local[*]"
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    inputs: str | None = None
    database: str | None = None


class _FileSettings(BaseModel):
    """The schema of `config/pipeline.yaml`."""

    model_config = ConfigDict(extra="forbid")

    catalog: str = "config/experiments.yaml"
    landing_dir: str = "landing"
    warehouse: str = "warehouse.duckdb"
    partitions_start_date: date = Field(default=date(2026, 11, 1))
    bot_user_agent_pattern: str = "bot|crawl|spider"
    guardrail_interval_minutes: int = Field(default=5, ge=1, le=1440)
    guardrail_max_experiments_per_tick: int = Field(default=50, ge=1)
    daily_schedule_hour: int = Field(default=1, ge=0, le=22)
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkSettings = Field(default_factory=SparkSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)

    @field_validator("bot_user_agent_pattern")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class PipelineSettings(BaseModel):
    """Resolved settings: absolute paths and a control database URL."""

    model_config = ConfigDict(frozen=True)

    home: Path
    catalog_path: Path
    landing_dir: Path
    warehouse_path: Path
    control_db_url: str
    partitions_start_date: date
    bot_user_agent_pattern: str
    guardrail_interval_minutes: int = 5
    guardrail_max_experiments_per_tick: int = 50
    daily_schedule_hour: int = 1
    engine: Literal["duckdb", "spark"] = "duckdb"  # where the heavy transforms run
    spark: SparkSettings = Field(default_factory=SparkSettings)
    # How the PyMC models (segment pooling, revenue hurdle) sample.
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def flags_snapshot_path(self) -> Path:
        """Where the `flags_snapshot` asset publishes the snapshot applications load."""
        return self.home / "flags" / "flags.json"

    def prepare_dagster_home(self) -> Path:
        """Create the Dagster home with exp-pipeline's instance config unless it has one.

        Both the CLI's in-process runs and `dagster dev` use it, so the UI shows the
        runs the CLI made. An existing dagster.yaml (e.g. PostgreSQL storage) is kept.
        """
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        config = self.dagster_home / "dagster.yaml"
        if not config.exists():
            config.write_text(DAGSTER_YAML, encoding="utf-8")
        return self.dagster_home

    @classmethod
    def load(
        cls, config_path: str | Path | None = None, home: str | Path | None = None
    ) -> PipelineSettings:
        """Settings from `config_path` (or $EXP_PIPELINE_CONFIG) and the environment."""
        path = Path(config_path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
        raw = {}
        if path.exists():
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise SettingsError(f"{path}: invalid YAML: {exc}") from None
        elif config_path is not None:
            raise SettingsError(f"{path}: no such settings file")
        try:
            file_settings = _FileSettings.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise SettingsError(f"{path}: {field}: {first['msg']}") from None
        home_path = Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()
        catalog = Path(file_settings.catalog)
        if not catalog.is_absolute():
            catalog = PROJECT_ROOT / catalog
        return cls(
            home=home_path,
            catalog_path=catalog,
            landing_dir=_under(home_path, file_settings.landing_dir),
            warehouse_path=_under(home_path, file_settings.warehouse),
            control_db_url=os.environ.get(CONTROL_DB_URL_ENV)
            or sqlite_url(home_path / "control.db"),
            partitions_start_date=file_settings.partitions_start_date,
            bot_user_agent_pattern=file_settings.bot_user_agent_pattern,
            guardrail_interval_minutes=file_settings.guardrail_interval_minutes,
            guardrail_max_experiments_per_tick=file_settings.guardrail_max_experiments_per_tick,
            daily_schedule_hour=file_settings.daily_schedule_hour,
            engine=file_settings.engine,
            spark=file_settings.spark,
            sampling=file_settings.sampling,
        )


def _under(home: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else home / path
