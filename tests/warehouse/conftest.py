"""Fixtures for the warehouse tests: a fresh DuckDB warehouse and tiny landing files.

Every test writes the few lines it needs under its own tmp_path, loads them with the
real loader, and reads the tables back; nothing here touches Dagster.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.loader import FileLoad, LoadReport, load_file, load_files

BOT_PATTERN = "bot|crawl|spider"
TABLES = ("events", "flag_assignments", "quarantine", "loaded_files")


def jsonl_text(records: Iterable[dict[str, Any] | str]) -> str:
    """One line per record: dicts are dumped as JSON, strings are written as they are."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return "".join(line + "\n" for line in lines)


class Warehouse:
    """A warehouse opened on tmp_path, with a landing folder and small read helpers."""

    def __init__(self, con: duckdb.DuckDBPyConnection, landing: Path) -> None:
        self.con = con
        self.landing = landing

    # Writing landing files -------------------------------------------------------------
    def path(self, name: str) -> Path:
        path = self.landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_text(self, name: str, text: str) -> Path:
        path = self.path(name)
        path.write_text(text, encoding="utf-8")
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = self.path(name)
        path.write_bytes(data)
        return path

    def write_jsonl(self, name: str, records: Iterable[dict[str, Any] | str]) -> Path:
        return self.write_text(name, jsonl_text(records))

    def write_jsonl_gz(self, name: str, records: Iterable[dict[str, Any] | str]) -> Path:
        return self.write_bytes(name, gzip.compress(jsonl_text(records).encode("utf-8")))

    def write_csv(self, name: str, header: list[str], rows: Iterable[list[str | None]]) -> Path:
        """RFC 4180 CSV with LF line ends; None is written as an empty field."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        return self.write_text(name, buffer.getvalue())

    def write_parquet(self, name: str, columns: dict[str, list[Any]]) -> Path:
        """A Parquet file from column lists (pyarrow infers the types)."""
        path = self.path(name)
        pq.write_table(pa.table(columns), path)
        return path

    # Loading ------------------------------------------------------------------------
    def load(self, *paths: Path | str, bot_pattern: str = BOT_PATTERN) -> LoadReport:
        return load_files(self.con, paths or [self.landing], bot_pattern=bot_pattern)

    def load_one(self, path: Path, bot_pattern: str = BOT_PATTERN) -> FileLoad:
        return load_file(self.con, path, bot_pattern=bot_pattern)

    # Reading ------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        return self.query(sql, params)[0][0]

    def counts(self) -> dict[str, int]:
        return {t: self.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}

    def quarantine(self) -> list[tuple[Any, ...]]:
        """(source_line, reason, detail, raw) of every quarantined record, in line order."""
        return self.query(
            "SELECT source_line, reason, detail, raw FROM quarantine "
            "ORDER BY source_file, source_line"
        )

    def loaded_files(self) -> list[tuple[Any, ...]]:
        """(path name, status, rows_read, rows_loaded, duplicates, quarantined, bots, dnt)."""
        rows = self.query(
            "SELECT path, status, rows_read, rows_loaded, duplicates, quarantined, bots, dnt "
            "FROM loaded_files ORDER BY path"
        )
        return [(Path(r[0]).name, *r[1:]) for r in rows]

    def event_lines(self) -> list[tuple[int, str]]:
        """(source_line, distinct_id) of every loaded event, in line order."""
        return self.query(
            "SELECT source_line, distinct_id FROM events ORDER BY source_file, source_line"
        )


def unaccounted(result: FileLoad) -> int:
    """Records read but neither loaded, nor a duplicate, nor quarantined: must be 0."""
    quarantined = sum(result.quarantined.values())
    return result.rows_read - (result.rows_loaded + result.duplicates + quarantined)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    landing = tmp_path / "landing"
    landing.mkdir()
    with open_warehouse(tmp_path / "w.duckdb") as con:
        yield Warehouse(con, landing)
