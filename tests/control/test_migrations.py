"""Alembic migrations: applied on first use, equal to the models, idempotent, reversible."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

import exp_pipeline.control.db as db_module
from exp_pipeline.control.db import MIGRATIONS_DIR, ControlDatabase, head_revision
from exp_pipeline.control.global_settings import get_setting, set_setting
from exp_pipeline.control.models import Base, FeatureFlag
from exp_pipeline.errors import SettingsError

HEAD = "0005"
TABLES = {
    "alembic_version",
    "approvals",
    "decision_log",
    "experiments",
    "feature_flags",
    "forced_assignments",
    "guardrail_snapshots",
    "guardrail_triggers",
    "guardrails",
    "metrics",
    "outcomes",
    "settings",
    "variants",
}


def table_names(db: ControlDatabase) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def schema_diff(db: ControlDatabase) -> list[Any]:
    """What autogenerate would change to make the database match the models."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def run_alembic(db: ControlDatabase, action: Callable[[Config, str], None], revision: str) -> None:
    """Run an Alembic command on the database's own engine, as ControlDatabase.migrate does."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        action(config, revision)


def test_head_revision_is_the_latest_migration() -> None:
    """Pins the revision chain, so a new migration must update these tests on purpose."""
    assert head_revision() == HEAD


def test_first_use_applies_the_migrations(control_url: str) -> None:
    """An empty database gets the whole schema, at head, from the constructor alone."""
    engine = create_engine(control_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()

    db = ControlDatabase(control_url)
    try:
        assert table_names(db) == TABLES
        assert db.current_revision() == HEAD
        with db.engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [tuple(v) for v in versions] == [(HEAD,)]
    finally:
        db.dispose()


def test_migrate_false_leaves_the_database_alone(control_url: str) -> None:
    """`migrate=False` is for tools that manage the schema themselves: nothing is created."""
    db = ControlDatabase(control_url, migrate=False)
    try:
        assert db.current_revision() is None
        assert table_names(db) == set()
    finally:
        db.dispose()


def test_migrated_schema_equals_the_models(db: ControlDatabase) -> None:
    """Models and migrations must not drift: autogenerate finds nothing to change."""
    assert schema_diff(db) == []


def test_partial_unique_indexes_let_deleted_rows_free_their_key(db: ControlDatabase) -> None:
    """The migrated `NOT deleted` partial index works the same on both backends."""
    with db.session() as session:
        session.add_all([FeatureFlag(key="f", deleted=True), FeatureFlag(key="f")])
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(FeatureFlag(key="f"))
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT key, deleted FROM feature_flags ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("f", True), ("f", False)]


def test_a_second_handle_does_not_migrate_again(
    db: ControlDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at head is used as it is: no upgrade runs, and its rows survive."""
    with db.session() as session:
        set_setting(session, "experiments_enabled", False)

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("upgrade ran on a database already at head")

    monkeypatch.setattr(db_module.command, "upgrade", refuse)
    for _ in range(2):
        again = ControlDatabase(db.url)
        try:
            assert again.current_revision() == HEAD
            with again.session() as session:
                assert get_setting(session, "experiments_enabled") is False
        finally:
            again.dispose()


def test_upgrade_to_head_is_idempotent(db: ControlDatabase) -> None:
    """Upgrading a database already at head changes neither the revision nor the schema."""
    with db.session() as session:
        set_setting(session, "experiments_enabled", False)
    run_alembic(db, command.upgrade, "head")
    run_alembic(db, command.upgrade, "head")
    db.migrate()
    assert db.current_revision() == HEAD
    assert table_names(db) == TABLES
    assert schema_diff(db) == []
    with db.session() as session:
        assert get_setting(session, "experiments_enabled") is False


def test_downgrade_to_base_and_upgrade_again(db: ControlDatabase) -> None:
    """The initial migration is reversible: base drops everything but Alembic's table."""
    run_alembic(db, command.downgrade, "base")
    assert db.current_revision() is None
    assert table_names(db) == {"alembic_version"}

    run_alembic(db, command.upgrade, "head")
    assert db.current_revision() == HEAD
    assert table_names(db) == TABLES
    assert schema_diff(db) == []


def test_a_new_database_at_a_url_seen_before_is_migrated(db: ControlDatabase) -> None:
    """A URL can name a fresh database later in the same process (a deleted SQLite file,
    a dropped schema): it must be migrated again, not assumed to be at head."""
    if db.dialect == "sqlite":
        db.dispose()
        path = make_url(db.url).database
        assert path is not None
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
    else:
        with db.engine.begin() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        db.dispose()

    again = ControlDatabase(db.url)
    try:
        assert again.current_revision() == HEAD
        assert table_names(again) == TABLES
    finally:
        again.dispose()


def test_each_in_memory_sqlite_database_is_migrated() -> None:
    """`sqlite:///:memory:` names a new database per engine; each one needs the schema."""
    first = ControlDatabase("sqlite:///:memory:")
    second = ControlDatabase("sqlite:///:memory:")
    try:
        for db in (first, second):
            assert db.current_revision() == HEAD
            with db.session() as session:
                assert get_setting(session, "experiments_enabled") is True
    finally:
        first.dispose()
        second.dispose()


def test_two_processes_migrating_at_once_both_succeed(control_url: str) -> None:
    """Processes that start together (webserver, daemon, CLI) must not race on the schema."""
    script = (
        "import sys\n"
        "from exp_pipeline.control.db import ControlDatabase\n"
        "print(ControlDatabase(sys.argv[1]).current_revision())\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, control_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == [HEAD, HEAD]
    db = ControlDatabase(control_url)
    try:
        assert table_names(db) == TABLES
        assert schema_diff(db) == []
    finally:
        db.dispose()


def test_a_plain_postgresql_url_uses_psycopg(postgres_url: str) -> None:
    """`postgresql://` is what users paste; it must not need the psycopg2 driver."""
    url = make_url(postgres_url).set(drivername="postgresql")
    db = ControlDatabase(url.render_as_string(hide_password=False))
    try:
        assert db.engine.url.drivername == "postgresql+psycopg"
        assert db.current_revision() == HEAD
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "the control database URL is not a valid URL: "),
        ("mysql://localhost/db", "unsupported control database 'mysql': use sqlite or postgresql"),
    ],
)
def test_bad_urls_are_one_line_settings_errors(url: str, message: str) -> None:
    """A misconfigured EXP_PIPELINE_CONTROL_DB_URL is reported, not a traceback."""
    with pytest.raises(SettingsError) as excinfo:
        ControlDatabase(url)
    assert str(excinfo.value).startswith(message)
    assert "\n" not in str(excinfo.value)


def test_upgrading_from_0001_keys_existing_outcomes(control_url: str) -> None:
    """Outcomes written before decision keys existed get a unique key derived from their id."""
    db = ControlDatabase(control_url)
    run_alembic(db, command.downgrade, "0001")  # before decision keys
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO feature_flags (id, key, active, deleted, created_at, updated_at) "
                "VALUES (1, 'f', false, false, :now, :now)"
            ),
            {"now": "2026-01-01 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO experiments (id, key, name, description, feature_flag_id, status, "
                "deleted, created_at, updated_at) "
                "VALUES (1, 'e', 'E', '', 1, 'completed', false, :now, :now)"
            ),
            {"now": "2026-01-01 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO outcomes (id, experiment_id, outcome, winner, decided_by, decided_at) "
                "VALUES (7, 1, 'shipped', NULL, 'me', :now)"
            ),
            {"now": "2026-01-01 00:00:00"},
        )
    run_alembic(db, command.upgrade, "head")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT decision_key FROM outcomes")).scalar_one() == "legacy:7"
    assert schema_diff(db) == []
    db.dispose()
