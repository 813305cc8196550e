"""Small helpers that turn core-library reports into metadata the Dagster UI renders."""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from exp_pipeline.analysis.health import HealthCheck


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


def records_table(
    rows: Sequence[Mapping[str, Any]], types: Mapping[str, str]
) -> dg.TableMetadataValue:
    """An inline table of `rows`, whose columns and types are given by `types`."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({k: row[k] for k in types}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(k, t) for k, t in types.items()]),
    )


def schema_from_ddl(columns_ddl: str) -> dg.TableSchema:
    """The column schema of a warehouse table from its DDL column list.

    Each line `name TYPE [constraints] [-- comment]` becomes a column whose description is
    the comment, so the DDL stays the one place a column is documented.
    """
    columns = []
    for line in columns_ddl.strip().splitlines():
        definition, _, comment = line.partition("--")
        parts = definition.strip().rstrip(",").split()
        if len(parts) >= 2:
            columns.append(dg.TableColumn(parts[0], parts[1].lower(), description=comment.strip()))
    return dg.TableSchema(columns=columns)


def check_result(
    name: str, health: HealthCheck, severity: dg.AssetCheckSeverity
) -> dg.AssetCheckResult:
    """An asset check result carrying the measure and its explanation."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=health.passed,
        severity=severity,
        description=health.description,
        metadata={"value": health.value, "detail": health.description},
    )
