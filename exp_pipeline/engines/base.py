"""What a transform needs from an engine, and the DuckDB engine that is the default.

The analysis and guardrail transforms speak to an `Engine`: they hand it DuckDB-dialect
SELECT statements with named parameters and say what to do with the rows (fetch them,
stage them as a session-scoped relation, or insert them into an analysis table whose
experiment rows were just cleared). Each engine translates and binds the statement its
own way, so the transforms are written once. Callers that hold a DuckDB connection (the
Dagster assets, the tests) keep passing it: `as_engine` wraps it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, runtime_checkable

import duckdb

from exp_pipeline.analysis.schema import replacing
from exp_pipeline.engines.sql import bind, insert_statement

Params = Mapping[str, Any]


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


Warehouse = duckdb.DuckDBPyConnection | Engine


def as_engine(warehouse: Warehouse) -> Engine:
    """The engine behind `warehouse`: a DuckDB connection is wrapped, an engine kept."""
    if isinstance(warehouse, duckdb.DuckDBPyConnection):
        return DuckDBEngine(warehouse)
    return warehouse
