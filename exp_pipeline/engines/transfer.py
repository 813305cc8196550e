"""Moving tables between the DuckDB warehouse and another engine, in bulk, through Arrow.

`export_inputs` writes the tables the transforms read as Parquet, the layout
`SparkEngine.register_parquet_inputs` reads (a cluster reads its own tables instead: see
docs/engines.md); `refresh_inputs` does it only when the warehouse's inputs changed since
the last export, so each asset of a run does not rewrite them. `copy_experiment_tables`
brings one experiment's analysis rows computed elsewhere back into DuckDB, where the
results stage, the reports and the UI read them; `copy_rebuilt` copies whatever a
Spark engine rebuilt (nothing for DuckDB, which wrote the warehouse itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import duckdb

from exp_pipeline.analysis.schema import replacing
from exp_pipeline.engines.base import Engine
from exp_pipeline.engines.spark import INPUT_TABLES, SparkEngine
from exp_pipeline.engines.sql import TRANSFORM_TABLES, table_columns

FINGERPRINT_FILE = "_fingerprint.json"

# What identifies the inputs' contents: the loader only appends events (each load stamps
# `loaded_at`) and their flag signals; the definitions snapshot is small enough to digest.
_FINGERPRINT_SQL = """
SELECT (SELECT count(*) FROM events), CAST((SELECT max(loaded_at) FROM events) AS VARCHAR),
       (SELECT count(*) FROM flag_assignments),
       (SELECT md5(coalesce(string_agg(CAST(v AS VARCHAR), '|' ORDER BY CAST(v AS VARCHAR)), ''))
        FROM experiment_variants v)
"""


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


def refresh_inputs(con: duckdb.DuckDBPyConnection, directory: str | Path) -> bool:
    """Export the inputs unless `directory` already holds these contents; True if it wrote.

    The fingerprint is written last, so an export that fails halfway is redone next time.
    """
    directory = Path(directory)
    fingerprint = json.dumps(list(con.execute(_FINGERPRINT_SQL).fetchall()[0]))
    marker = directory / FINGERPRINT_FILE
    if marker.exists() and marker.read_text(encoding="utf-8") == fingerprint:
        return False
    marker.unlink(missing_ok=True)
    export_inputs(con, directory)
    marker.write_text(fingerprint, encoding="utf-8")
    return True


def copy_experiment_tables(
    source: SparkEngine,
    con: duckdb.DuckDBPyConnection,
    experiment_key: str,
    tables: Iterable[str] = TRANSFORM_TABLES,
) -> dict[str, int]:
    """Replace `experiment_key`'s rows of `tables` in DuckDB with Spark's rows, in one
    DuckDB transaction. Returns the rows copied per table.
    """
    tables = tuple(tables)
    copied = {}
    with replacing(con, experiment_key, *tables):
        for table in tables:
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


def copy_rebuilt(engine: Engine, con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Copy every experiment's tables `engine` rebuilt back into DuckDB; forget them.

    Rows copied per experiment and table; {} for the DuckDB engine, which wrote them there.
    """
    if not isinstance(engine, SparkEngine):
        return {}
    copied = {
        key: copy_experiment_tables(engine, con, key, sorted(tables))
        for key, tables in engine.rebuilt.items()
    }
    engine.rebuilt.clear()
    return copied
