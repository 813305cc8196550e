"""Reading one landing file into a uniform staging relation, whatever its format.

Every reader produces the same columns, all text, one row per record:
`source_line, raw, parse_error, event, distinct_id, ts_text, props, event_id`.
Validation, typing and deduplication then happen once, in `loader`, for all formats.
Records that cannot even be parsed keep their raw text and a `parse_error`, so they can
be quarantined with their line number rather than dropped. Records of columnar sources
(CSV rows, Parquet) have no text of their own: their `raw` is NULL, and `RAW_TEXT` builds
it from the fields for the few that are quarantined, instead of for every row.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from exp_pipeline.errors import LoadError

REQUIRED_COLUMNS = ("event", "distinct_id", "timestamp")
FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}


# Raw text kept in quarantine, an expression over `staged`: the record's own text, or for
# records from columnar sources (raw NULL, no parse error) the fields as JSON.
RAW_TEXT = (
    "coalesce(raw, CASE WHEN parse_error IS NULL THEN "
    "json_object('event', event, 'distinct_id', distinct_id, 'timestamp', ts_text, "
    "'properties', props, 'event_id', event_id)::VARCHAR END)"
)


def detect_format(path: Path) -> str | None:
    """The landing format of `path` from its extension (a trailing .gz is allowed for text)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if suffixes and FORMATS.get(suffixes[-1]) == "parquet":
            return None
    return FORMATS.get(suffixes[-1]) if suffixes else None


def _stage_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # Each physical line is read as one text column (no quoting, a delimiter that JSON
    # text never contains), numbered in file order, then parsed as JSON in SQL.
    con.execute(
        r"""
        CREATE OR REPLACE TEMP TABLE staged AS
        WITH lines AS (
            SELECT row_number() OVER () AS source_line, line
            FROM read_csv(?, columns = {'line': 'VARCHAR'}, delim = E'\x01', quote = '',
                          escape = '', header = false, auto_detect = false,
                          max_line_size = 16777216)
        ), parsed AS (
            SELECT source_line, line AS raw,
                   CASE WHEN json_valid(line) THEN line::JSON END AS j
            FROM lines
            WHERE line IS NOT NULL AND trim(line) <> ''
        )
        SELECT source_line, raw,
               CASE WHEN j IS NULL THEN 'malformed_json'
                    WHEN json_type(j) <> 'OBJECT' THEN 'not_an_object' END AS parse_error,
               j ->> '$.event' AS event,
               j ->> '$.distinct_id' AS distinct_id,
               j ->> '$.timestamp' AS ts_text,
               CASE WHEN json_type(j, '$.properties') NOT IN ('NULL')
                    THEN json_extract(j, '$.properties')::VARCHAR END AS props,
               coalesce(j ->> '$.event_id', j ->> '$.uuid') AS event_id
        FROM parsed
        """,
        [str(path)],
    )


def _columns(con: duckdb.DuckDBPyConnection, relation_sql: str, path: Path) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {relation_sql}", [str(path)]).fetchall()
    return {name.lower(): type_ for name, type_, *_ in rows}


def _require_columns(path: Path, columns: dict[str, str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise LoadError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(columns) or 'none'})"
        )


def _optional(columns: dict[str, str], *names: str) -> str:
    present = [f'"{n}"' for n in names if n in columns]
    return f"coalesce({', '.join(present)})" if present else "NULL"


# Landing CSV is RFC 4180 (comma, double quotes), stated rather than sniffed: a sniffer
# guesses differently when a file holds malformed rows, and those must be quarantined.
_CSV_DIALECT = "all_varchar = true, header = true, delim = ',', quote = '\"', escape = '\"'"


def _csv_header(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[list[str], int]:
    """The field names on the first non-blank line of a CSV file, made unique, and its number."""
    row = con.execute(
        r"""
        SELECT n, line
        FROM (SELECT row_number() OVER () AS n, line
              FROM read_csv(?, columns = {'line': 'VARCHAR'}, delim = E'\x01', quote = '',
                            escape = '', header = false, auto_detect = false,
                            max_line_size = 16777216))
        WHERE trim(line) <> ''
        ORDER BY n
        LIMIT 1
        """,
        [str(path)],
    ).fetchone()
    if row is None:
        return [], 1
    names: list[str] = []
    for name in next(csv.reader([row[1]])):
        taken = name.lower() in (n.lower() for n in names)
        names.append(f"{name}_{len(names)}" if taken else name)
    return names, int(row[0])


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # The columns come from the header line alone, and are then given to the reader, so
    # that no sniffing of the data rows can fail on a malformed row (which would reject
    # the whole file instead of that row).
    header, header_line = _csv_header(con, path)
    columns = {name.lower(): "VARCHAR" for name in header}
    _require_columns(path, columns)
    reader = (
        f"read_csv(?, {_CSV_DIALECT}, auto_detect = false, columns = ?, "
        f"skip = {header_line - 1}, store_rejects = true, "
        "rejects_table = 'csv_rejects', rejects_scan = 'csv_reject_scans')"
    )
    props = _optional(columns, "properties")
    event_id = _optional(columns, "event_id", "uuid")
    con.execute("DROP TABLE IF EXISTS csv_rejects")
    con.execute("DROP TABLE IF EXISTS csv_reject_scans")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE csv_rows AS
        SELECT row_number() OVER () AS k, "event" AS event, "distinct_id" AS distinct_id,
               "timestamp" AS ts_text, {props} AS props, {event_id} AS event_id
        FROM {reader}
        """,
        [str(path), dict.fromkeys(header, "VARCHAR")],
    )
    # Rejected records (wrong column count, bad quoting) leave gaps in the numbering of
    # the accepted ones; a_j counts the accepted data rows before reject j, so accepted
    # row k sits on line k + h (the header's line) + #{j : a_j < k}.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE staged AS
        WITH rejects AS (
            SELECT line, trim(any_value(csv_line), chr(13) || chr(10)) AS csv_line,
                   string_agg(DISTINCT error_type, ', ') AS error_type
            FROM csv_rejects GROUP BY line
        ), numbered AS (
            SELECT line, line - row_number() OVER (ORDER BY line) - {header_line} AS a
            FROM rejects
        )
        SELECT k + {header_line} + (SELECT count(*) FROM numbered WHERE a < k) AS source_line,
               NULL::VARCHAR AS raw,
               NULL AS parse_error, event, distinct_id, ts_text, props, event_id
        FROM csv_rows
        UNION ALL
        SELECT line, csv_line, 'malformed_csv_row: ' || lower(error_type),
               NULL, NULL, NULL, NULL, NULL
        FROM rejects
        """
    )


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    reader = "read_parquet(?, file_row_number = true)"
    columns = _columns(con, "read_parquet(?)", path)
    _require_columns(path, columns)
    props = "NULL"
    if "properties" in columns:
        text_types = ("VARCHAR", "JSON")
        props = (
            '"properties"::VARCHAR'
            if columns["properties"] in text_types
            else 'to_json("properties")::VARCHAR'
        )
    event_id = _optional(columns, "event_id", "uuid")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE staged AS
        SELECT file_row_number + 1 AS source_line, NULL::VARCHAR AS raw,
               NULL::VARCHAR AS parse_error, "event"::VARCHAR AS event,
               "distinct_id"::VARCHAR AS distinct_id, "timestamp"::VARCHAR AS ts_text,
               {props} AS props, {event_id}::VARCHAR AS event_id
        FROM {reader}
        """,
        [str(path)],
    )


def stage_file(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> None:
    """Create the temp table `staged` from `path`; raise LoadError if it is unreadable."""
    stage = {"jsonl": _stage_jsonl, "csv": _stage_csv, "parquet": _stage_parquet}[fmt]
    try:
        stage(con, path)
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise LoadError(f"{path}: cannot be read as {fmt}: {first_line}") from None
