"""Shared fixtures: temporary homes and control databases on SQLite and PostgreSQL.

PostgreSQL tests read EXP_PIPELINE_TEST_POSTGRES_URL (set by .ci/run). Each test gets a
schema of its own, dropped afterwards, so tests never see each other's rows. In CI an
unset URL is an error, not a skip, so these tests cannot silently stop running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "EXP_PIPELINE_TEST_POSTGRES_URL"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} must be set in CI")
        pytest.skip(f"{POSTGRES_ENV} is not set")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = make_url(_postgres_base_url())
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def control_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The control database URL, once per supported backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'control.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh pipeline home, with the control database URL taken from nowhere else."""
    path = tmp_path / "home"
    monkeypatch.setenv("EXP_PIPELINE_HOME", str(path))
    monkeypatch.delenv("EXP_PIPELINE_CONTROL_DB_URL", raising=False)
    monkeypatch.delenv("EXP_PIPELINE_CONFIG", raising=False)
    return path
