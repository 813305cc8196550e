"""The distributed path: the same transforms on Apache Spark (PySpark, the `spark` extra).

Statements are sqlglot's Spark translation of the DuckDB-dialect text, bound with Spark's
named parameter markers (`spark.sql(text, args=...)`), never pasted. The session time
zone is forced to UTC whatever the configuration says, so timestamps mean the same
instants as in DuckDB. Analysis tables are Parquet tables partitioned by
`experiment_key`: replacing an experiment drops its partitions, the Spark counterpart of
DuckDB's delete-and-insert. Parquet tables have no multi-statement transactions, so a
build that fails halfway leaves that experiment's partitions partial until it is re-run
(the re-run replaces them); other experiments are never touched.

Rows come back through Arrow, so timestamps arrive as UTC instants, not as naive values
in the Python process's local zone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from exp_pipeline.analysis.schema import TABLES
from exp_pipeline.engines.sql import SOURCE_DIALECT, bind, insert_statement
from exp_pipeline.warehouse.schema import DDL

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Params = Mapping[str, Any]

# The warehouse tables the transforms read; `analysis_events` is a view over `events`.
INPUT_TABLES = ("events", "flag_assignments", "experiment_variants")
SESSION_TIME_ZONE = "UTC"


def spark_table_ddl(table: str) -> str:
    """Spark DDL of analysis table `table`: its DuckDB DDL translated, Parquet, partitioned."""
    ddl = sqlglot.transpile(
        f"CREATE TABLE IF NOT EXISTS {table} ({TABLES[table]})",
        read=SOURCE_DIALECT,
        write="spark",
    )[0]
    return f"{ddl} USING parquet PARTITIONED BY (experiment_key)"


def analysis_views_ddl() -> list[str]:
    """The warehouse's views (analysis_events) as Spark temporary views over the inputs."""
    views = []
    for statement in DDL:
        tree = sqlglot.parse_one(statement, read=SOURCE_DIALECT)
        if isinstance(tree, exp.Create) and tree.kind == "VIEW":
            tree.set("exists", False)
            tree.set("replace", True)
            tree.set("properties", exp.Properties(expressions=[exp.TemporaryProperty()]))
            views.append(tree.sql(dialect="spark"))
    return views


class SparkEngine:
    """Runs the portable statements on a SparkSession."""

    dialect = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._created: set[str] = set()  # analysis tables known to exist
        # Per experiment, the analysis tables this engine rebuilt: what a caller copies
        # back to DuckDB (`engines.transfer.copy_rebuilt`).
        self.rebuilt: dict[str, set[str]] = {}
        spark.conf.set("spark.sql.session.timeZone", SESSION_TIME_ZONE)

    def _frame(self, sql: str, params: Params) -> DataFrame:
        """The statement in Spark SQL with its parameters bound (commands run at once)."""
        text, bound = bind(sql, self.dialect, params)
        return self.spark.sql(text, args=bound)

    def fetch(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        table = self._frame(sql, params).toArrow()
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    @contextmanager
    def staged(self, name: str, sql: str, params: Params) -> Iterator[None]:
        frame = self._frame(sql, params).persist()
        frame.count()  # compute once, here, not once per statement that reads it
        frame.createOrReplaceTempView(name)
        try:
            yield
        finally:
            self.spark.catalog.dropTempView(name)
            frame.unpersist()

    @contextmanager
    def replacing(self, experiment_key: str, *tables: str) -> Iterator[None]:
        for table in tables:
            if table not in self._created:
                self.spark.sql(spark_table_ddl(table))
                self._created.add(table)
            self.spark.sql(
                f"ALTER TABLE {table} DROP IF EXISTS PARTITION (experiment_key = :key)",
                args={"key": experiment_key},
            )
        self.rebuilt.setdefault(experiment_key, set()).update(tables)
        yield

    def insert(self, table: str, sql: str, params: Params) -> None:
        self._frame(insert_statement(table, sql), params)

    @contextmanager
    def staged_rows(
        self, name: str, columns: Mapping[str, str], rows: Sequence[tuple[Any, ...]]
    ) -> Iterator[None]:
        schema = ", ".join(
            f"{column} {exp.DataType.build(kind, dialect=SOURCE_DIALECT).sql('spark')}"
            for column, kind in columns.items()
        )
        self.spark.createDataFrame(list(rows), schema=schema).createOrReplaceTempView(name)
        try:
            yield
        finally:
            self.spark.catalog.dropTempView(name)

    def register_parquet_inputs(self, directory: str | Path) -> None:
        """Read the warehouse's input tables from `<directory>/<table>.parquet`."""
        for table in INPUT_TABLES:
            path = Path(directory) / f"{table}.parquet"
            self.spark.read.parquet(str(path)).createOrReplaceTempView(table)
        self.register_views()

    def register_views(self) -> None:
        """Create the warehouse's views (analysis_events) over the input tables."""
        for view in analysis_views_ddl():
            self.spark.sql(view)


def spark_session(
    master: str, options: Mapping[str, str | int | float | bool], app_name: str = "exp-pipeline"
) -> SparkSession:
    """A SparkSession on `master` with `options`; the session time zone is always UTC."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in options.items():
        builder = builder.config(key, value)
    return builder.config("spark.sql.session.timeZone", SESSION_TIME_ZONE).getOrCreate()
