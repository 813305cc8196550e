"""The portable SQL layer: golden Spark translations, parameter binding, exact sums.

Every statement the transforms run (the `.sql` files and the generated funnel, metric and
guardrail statements) is translated to Spark SQL and compared with a golden file under
`golden/`, so a sqlglot upgrade that changes what Spark runs shows up as a diff to review.
After reviewing one, regenerate with `EXP_PIPELINE_UPDATE_GOLDEN=1 pytest tests/engines`.
"""

from __future__ import annotations

import itertools
import math
import os
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from exp_pipeline.analysis.conversions import metric_sql
from exp_pipeline.analysis.funnels import funnel_metrics_sql
from exp_pipeline.analysis.metric_sums import metric_sums_sql
from exp_pipeline.analysis.schema import create_analysis_tables
from exp_pipeline.analysis.trends import trend_metrics_sql
from exp_pipeline.analysis.units import exposed_units_sql, group_path
from exp_pipeline.engines.base import DuckDBEngine
from exp_pipeline.engines.spark import analysis_views_ddl, spark_table_ddl
from exp_pipeline.engines.sql import (
    SQL_DIR,
    TRANSFORM_TABLES,
    bind,
    insert_statement,
    json_path,
    property_sum,
    statement,
    table_columns,
    translate,
)
from exp_pipeline.guardrails.aggregates import KIND_SQL, LOOKS, WINDOWS
from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.definitions_snapshot import write_definitions_snapshot

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE_ENV = "EXP_PIPELINE_UPDATE_GOLDEN"

FUNNEL = {"kind": "funnel", "steps": ["$pageview", "checkout_started", "purchase"]}
GROUPED = {"aggregation": "organization"}
STATEMENTS: dict[str, str] = {
    **{path.stem: statement(path.stem) for path in sorted(SQL_DIR.glob("*.sql"))},
    "conversions_funnel": metric_sql(FUNNEL),
    "conversions_funnel_group": metric_sql({**FUNNEL, **GROUPED}),
    "conversions_continuous_group": metric_sql({"kind": "continuous", **GROUPED}),
    "trend_metrics": trend_metrics_sql({"kind": "trend"}),
    "trend_metrics_group": trend_metrics_sql({"kind": "trend", **GROUPED}),
    "metric_sums_ratio_group": metric_sums_sql(
        "ratio", True, exposed_units_sql({"kind": "ratio", **GROUPED})
    ),
    "conversions_funnel_window": metric_sql({**FUNNEL, "conversion_window_hours": 1.5}),
    "conversions_ratio": metric_sql({"kind": "ratio"}),
    "conversions_continuous": metric_sql({"kind": "continuous"}),
    "conversions_trend": metric_sql({"kind": "trend"}),
    "funnel_metrics_3_steps": funnel_metrics_sql(3),
    "insert_exposures": insert_statement("exposures", statement("exposures")),
    **{f"guardrail_{kind}": sql for kind, sql in KIND_SQL.items()},
}


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.spark.sql"
    if os.environ.get(UPDATE_ENV):
        path.write_text(text + "\n", encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with {UPDATE_ENV}=1 and review it"
    assert text + "\n" == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_spark_translation_matches_the_golden_text(name: str) -> None:
    _check_golden(name, translate(STATEMENTS[name], "spark")[0])


@pytest.mark.parametrize("table", TRANSFORM_TABLES)
def test_spark_table_ddl_matches_the_golden_text(table: str) -> None:
    _check_golden(f"ddl_{table}", spark_table_ddl(table))


def test_spark_views_match_the_golden_text() -> None:
    _check_golden("ddl_views", ";\n".join(analysis_views_ddl()))


def test_every_golden_file_belongs_to_a_statement() -> None:
    names = {f"{n}.spark.sql" for n in STATEMENTS}
    names |= {f"ddl_{t}.spark.sql" for t in TRANSFORM_TABLES} | {"ddl_views.spark.sql"}
    assert {p.name for p in GOLDEN.iterdir()} == names


# A value for every parameter any statement names (each statement binds what it uses).
DUMMY_PARAMS = {
    "key": "k",
    "metric": "m",
    "flag": "f",
    "start": datetime(2020, 1, 1, tzinfo=UTC),
    "end": datetime(2020, 1, 2, tzinfo=UTC),
    "cap": datetime(2020, 1, 2, tzinfo=UTC),
    "timezone": "Europe/Amsterdam",
    "first_day": date(2020, 1, 1),
    "last_day": date(2020, 1, 2),
    "event": "e",
    "math": "total",
    "numerator": "n",
    "denominator": "d",
    "first": "a",
    "last": "b",
    "path": json_path("amount", "duckdb"),
    "window_hours": 1.5,
    "quantile": 0.99,
    "group_type": "organization",
    "group_path": group_path("organization", "duckdb"),
    **{f"step{i}": f"s{i}" for i in range(1, 4)},
}


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_duckdb_runs_every_statement_as_written(name: str) -> None:
    """DuckDB gets the source text unchanged, and it runs against the real schema."""
    assert translate(STATEMENTS[name], "duckdb")[0] == STATEMENTS[name]
    with open_warehouse(":memory:") as con:
        create_analysis_tables(con)
        write_definitions_snapshot(con, [], DUMMY_PARAMS["end"])
        engine = DuckDBEngine(con)
        with (
            engine.staged("exposure_classes", statement("exposure_classes"), DUMMY_PARAMS),
            engine.staged(
                "group_exposure_classes", statement("group_exposure_classes"), DUMMY_PARAMS
            ),
            engine.staged_rows("guardrail_looks", LOOKS, []),
            engine.staged_rows("guardrail_windows", WINDOWS, []),
        ):
            if name.startswith("insert_"):
                con.execute(*bind(STATEMENTS[name], "duckdb", DUMMY_PARAMS))
            else:
                assert engine.fetch(STATEMENTS[name], DUMMY_PARAMS) in ([], [(None,)])


def test_parameters_are_bound_by_name_and_never_pasted() -> None:
    sql = "SELECT $a AS a, $b AS b"
    text, bound = bind(sql, "spark", {"a": "x'; DROP TABLE t; --", "b": 2, "unused": 3})
    assert text == "SELECT\n  :a AS a,\n  :b AS b"
    assert bound == {"a": "x'; DROP TABLE t; --", "b": 2}
    with duckdb.connect() as con:
        assert DuckDBEngine(con).fetch(sql, {"a": "x'", "b": 2, "c": 1}) == [("x'", 2)]
    with pytest.raises(KeyError, match="missing SQL parameters: b"):
        bind(sql, "duckdb", {"a": 1})


def test_unknown_dialects_and_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        translate("SELECT 1", "oracle")
    with pytest.raises(ValueError, match="unknown analysis table"):
        insert_statement("events", "SELECT 1")


def test_table_columns_are_the_tables_columns() -> None:
    with duckdb.connect() as con:
        create_analysis_tables(con)
        for table in TRANSFORM_TABLES:
            described = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]
            assert list(table_columns(table)) == described


@pytest.mark.parametrize("name", ["amount", "$feature_flag", "$feature/new-search", 'dou"ble'])
def test_duckdb_json_paths_read_any_property_name(name: str) -> None:
    with duckdb.connect() as con:
        value = con.execute(
            "SELECT json_object($name, 2.5) ->> $path",
            {"name": name, "path": json_path(name, "duckdb")},
        ).fetchone()[0]
    assert value == "2.5"


def test_spark_json_paths_refuse_names_they_cannot_express() -> None:
    assert json_path("$feature_flag", "spark") == "$['$feature_flag']"
    with pytest.raises(ValueError, match="cannot hold"):
        json_path("it's", "spark")


def test_property_sums_do_not_depend_on_row_order() -> None:
    """A DOUBLE sum of these values is 0 or 1 depending on order; the exact sum is 1."""
    values = [1e16, 1.0, -1e16]
    assert {sum(p) for p in itertools.permutations(values)} == {0.0, 1.0}
    exact = math.fsum(values)
    sql = f"SELECT {property_sum('properties')} FROM t"
    with duckdb.connect() as con:
        con.execute("SET threads = 1")  # rows are summed in insertion order
        for order in itertools.permutations(values):
            con.execute("CREATE OR REPLACE TABLE t (properties JSON)")
            con.executemany("INSERT INTO t VALUES (json_object('v', ?))", [[v] for v in order])
            assert DuckDBEngine(con).fetch(sql, {"path": json_path("v", "duckdb")}) == [(exact,)]
