"""Moving tables between the DuckDB warehouse and another engine, in bulk, through Arrow.

`export_inputs` writes the tables the transforms read as Parquet, the layout
`SparkEngine.register_parquet_inputs` reads (a cluster reads its own tables instead: see
docs/engines.md). `copy_experiment_tables` brings one experiment's analysis rows computed
elsewhere back into DuckDB, where the results stage reads them today.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from exp_pipeline.analysis.schema import replacing
from exp_pipeline.engines.spark import INPUT_TABLES, SparkEngine
from exp_pipeline.engines.sql import TRANSFORM_TABLES, table_columns


def export_inputs(con: duckdb.DuckDBPyConnection, directory: str | Path) -> list[Path]:
    """Write each input table to `<directory>/<table>.parquet`; return the files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for table in INPUT_TABLES:
        path = directory / f"{table}.parquet"
        con.table(table).write_parquet(str(path))
        files.append(path)
    return files


def copy_experiment_tables(
    source: SparkEngine, con: duckdb.DuckDBPyConnection, experiment_key: str
) -> dict[str, int]:
    """Replace `experiment_key`'s rows of the transform tables in DuckDB with Spark's rows.

    Returns the rows copied per table.
    """
    copied = {}
    with replacing(con, experiment_key, *TRANSFORM_TABLES):
        for table in TRANSFORM_TABLES:
            columns = ", ".join(table_columns(table))
            rows = source.spark.sql(
                f"SELECT {columns} FROM {table} WHERE experiment_key = :key",
                args={"key": experiment_key},
            ).toArrow()
            con.register("incoming_rows", rows)
            try:
                con.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM incoming_rows")
            finally:
                con.unregister("incoming_rows")
            copied[table] = rows.num_rows
    return copied
