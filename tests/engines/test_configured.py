"""Choosing the engine by configuration: `engine: duckdb | spark` in pipeline.yaml.

The Spark side of `open_engine` is exercised by tests/analysis/test_engine_parity.py,
which opens its session from settings exactly like this.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exp_pipeline.engines.base import DuckDBEngine
from exp_pipeline.engines.configured import open_engine
from exp_pipeline.errors import SettingsError
from exp_pipeline.settings import PipelineSettings, SparkSettings


def _settings(tmp_path: Path, home: Path, **config: object) -> PipelineSettings:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return PipelineSettings.load(path, home=home)


def test_duckdb_is_the_default_engine(tmp_path: Path, home: Path) -> None:
    assert PipelineSettings.load(home=home).engine == "duckdb"  # config/pipeline.yaml
    settings = _settings(tmp_path, home)  # a file that says nothing about engines
    assert settings.engine == "duckdb"
    assert settings.spark == SparkSettings(master="local[*]", options={})


def test_the_spark_block_is_read_from_the_settings_file(tmp_path: Path, home: Path) -> None:
    settings = _settings(
        tmp_path,
        home,
        engine="spark",
        spark={
            "master": "spark://spark-master:7077",
            "options": {"spark.executor.memory": "4g", "spark.sql.shuffle.partitions": 64},
            "database": "analytics",
        },
    )
    assert settings.engine == "spark"
    assert settings.spark.master == "spark://spark-master:7077"
    assert settings.spark.options == {
        "spark.executor.memory": "4g",
        "spark.sql.shuffle.partitions": 64,
    }
    assert settings.spark.database == "analytics"
    assert settings.spark.inputs is None


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"engine": "snowflake"}, "engine"),
        ({"spark": {"mastr": "local"}}, "spark.mastr"),
    ],
)
def test_unknown_engines_and_spark_keys_are_refused(
    tmp_path: Path, home: Path, config: dict, field: str
) -> None:
    with pytest.raises(SettingsError, match=field):
        _settings(tmp_path, home, **config)


def test_the_duckdb_engine_opens_the_configured_warehouse(tmp_path: Path, home: Path) -> None:
    settings = _settings(tmp_path, home, engine="duckdb", warehouse="elsewhere.duckdb")
    with open_engine(settings) as engine:
        assert isinstance(engine, DuckDBEngine)
        assert engine.fetch("SELECT count(*) FROM analysis_events", {}) == [(0,)]
        engine.con.execute("CREATE TABLE marker (x INTEGER)")
    assert (home / "elsewhere.duckdb").exists()
    with open_engine(settings) as engine:
        assert engine.fetch("SELECT count(*) FROM marker", {}) == [(0,)]
