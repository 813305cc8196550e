"""What a transform needs from an engine, and the DuckDB engine that is the default.

The analysis and guardrail transforms speak to an `Engine`: they hand it DuckDB-dialect
SELECT statements with named parameters and say what to do with the rows (fetch them,
stage them as a session-scoped relation, or insert them into an analysis table whose
experiment rows were just cleared); a set-based statement over many targets also gets
their values staged as rows. Each engine translates and binds the statement its own way,
so the transforms are written once. Callers that hold a DuckDB connection (the tests,
the CLI) keep passing it: `as_engine` wraps it; the Dagster assets get the configured
engine from `engines.configured.transform_engine`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, runtime_checkable

import duckdb

from exp_pipeline.analysis.schema import replacing
from exp_pipeline.engines.sql import bind, insert_statement

Params = Mapping[str, Any]
Columns = Mapping[str, str]  # column name -> DuckDB type
_STAGE_CHUNK = 500  # rows per INSERT of `DuckDBEngine.staged_rows`


@runtime_checkable
class Engine(Protocol):
    """An engine that runs the portable statements of `exp_pipeline.engines.sql`."""

    dialect: str

    def fetch(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        """All rows of a (small) result."""
        ...

    def staged(self, name: str, sql: str, params: Params) -> AbstractContextManager[None]:
        """`sql`'s rows as relation `name`, computed once, for the duration of the block."""
        ...

    def replacing(self, experiment_key: str, *tables: str) -> AbstractContextManager[None]:
        """A block that starts by deleting `experiment_key`'s rows from `tables`."""
        ...

    def insert(self, table: str, sql: str, params: Params) -> None:
        """Append `sql`'s rows to analysis table `table` (by column position)."""
        ...

    def staged_rows(
        self, name: str, columns: Columns, rows: Sequence[tuple[Any, ...]]
    ) -> AbstractContextManager[None]:
        """A few Python `rows` as relation `name` for the duration of the block.

        `columns` maps each column to its DuckDB type (INTEGER, VARCHAR, TIMESTAMPTZ, ...).
        Values travel as data, never as SQL text: how a set-based statement receives many
        targets' parameters at once.
        """
        ...


class DuckDBEngine:
    """The embedded default: statements run as written, replacements in one transaction."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def fetch(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        return self.con.execute(*bind(sql, self.dialect, params)).fetchall()

    @contextmanager
    def staged(self, name: str, sql: str, params: Params) -> Iterator[None]:
        text, bound = bind(sql, self.dialect, params)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {text}", bound)
        try:
            yield
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    @contextmanager
    def replacing(self, experiment_key: str, *tables: str) -> Iterator[None]:
        with replacing(self.con, experiment_key, *tables):
            yield

    def insert(self, table: str, sql: str, params: Params) -> None:
        self.con.execute(*bind(insert_statement(table, sql), self.dialect, params))

    @contextmanager
    def staged_rows(
        self, name: str, columns: Columns, rows: Sequence[tuple[Any, ...]]
    ) -> Iterator[None]:
        schema = ", ".join(f"{column} {kind}" for column, kind in columns.items())
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({schema})")
        try:
            # One multi-row INSERT per chunk: values bound, a statement per few hundred rows.
            marks = f"({', '.join('?' * len(columns))})"
            for i in range(0, len(rows), _STAGE_CHUNK):
                chunk = rows[i : i + _STAGE_CHUNK]
                self.con.execute(
                    f"INSERT INTO {name} VALUES {', '.join([marks] * len(chunk))}",
                    [value for row in chunk for value in row],
                )
            yield
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")


Warehouse = duckdb.DuckDBPyConnection | Engine


def as_engine(warehouse: Warehouse) -> Engine:
    """The engine behind `warehouse`: a DuckDB connection is wrapped, an engine kept."""
    if isinstance(warehouse, duckdb.DuckDBPyConnection):
        return DuckDBEngine(warehouse)
    return warehouse
