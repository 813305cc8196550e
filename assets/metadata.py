"""Small helpers that turn core-library reports into metadata the Dagster UI renders."""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg


def counts_table(counts: Mapping[str, int], label: str) -> dg.TableMetadataValue:
    """A two-column inline table (label, count), e.g. quarantined rows by reason."""
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord({label: key, "count": int(value)}) for key, value in counts.items()
        ],
        schema=dg.TableSchema(
            columns=[dg.TableColumn(label, "string"), dg.TableColumn("count", "int")]
        ),
    )


def column_schema(columns: Sequence[tuple[str, str, str]]) -> dg.TableSchema:
    """A table schema from (name, type, description) triples, for asset column metadata."""
    return dg.TableSchema(
        columns=[dg.TableColumn(name, type_, description=doc) for name, type_, doc in columns]
    )


def records_table(
    rows: Sequence[Mapping[str, Any]], types: Mapping[str, str]
) -> dg.TableMetadataValue:
    """An inline table of `rows`, whose columns and types are given by `types`."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({k: row[k] for k in types}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(k, t) for k, t in types.items()]),
    )
