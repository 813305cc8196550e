"""Connecting to the control database, and applying its migrations on first use.

SQLite (the embedded default) and PostgreSQL behave the same here: every transaction
on SQLite starts with `BEGIN IMMEDIATE` under a busy timeout, so two writers queue
rather than interleave (SQLAlchemy's `with_for_update()` takes no lock on SQLite), and
migrations on PostgreSQL run under an advisory lock so two processes starting at once
do not race to create the schema.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from exp_pipeline.errors import SettingsError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_LOCK_ID = 0x6578705F  # arbitrary constant: "exp_" in ASCII
_migrate_lock = threading.Lock()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _make_engine(url: str, busy_timeout_s: float) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL in it
        raise SettingsError(f"the control database URL is not a valid URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": busy_timeout_s})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(1, int(busy_timeout_s))},
        )
    raise SettingsError(
        f"unsupported control database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


class ControlDatabase:
    """A handle on the control database; migrates it to the latest schema on first use."""

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0, migrate: bool = True) -> None:
        self.url = url
        self.engine = _make_engine(url, busy_timeout_s)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrate(self) -> None:
        """Upgrade to the head revision when behind it, safely across threads and processes.

        The revision is read each time rather than remembered per URL: the same URL can
        name a new, empty database later in the same process (`sqlite:///:memory:`, a
        deleted SQLite file, a dropped schema), and a remembered URL would skip migrating it.
        """
        with _migrate_lock:
            if self.current_revision() == head_revision():
                return
            config = _alembic_config()
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    lock = text("SELECT pg_advisory_xact_lock(:id)")
                    conn.execute(lock, {"id": _MIGRATION_LOCK_ID})
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
