"""Opening the DuckDB warehouse with explicit, engine-neutral session settings.

The session time zone is always UTC, so a naive timestamp means UTC whatever the
machine's zone. The schema is created on open, so any connection sees the tables.
DuckDB admits one writing process at a time: callers keep connections short, and the
Dagster layer serialises writers through one concurrency pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from exp_pipeline.warehouse.schema import create_schema


@contextmanager
def open_warehouse(
    path: str | Path,
    *,
    read_only: bool = False,
    memory_limit: str | None = None,
    temp_directory: str | Path | None = None,
    threads: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Connect to the warehouse at `path` (":memory:" for a throwaway one), closing on exit."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if memory_limit:
            con.execute("SET memory_limit = ?", [memory_limit])
        if temp_directory:
            con.execute("SET temp_directory = ?", [str(temp_directory)])
        if threads:
            con.execute("SET threads = ?", [threads])
        if not read_only:
            create_schema(con)
        yield con
    finally:
        con.close()
