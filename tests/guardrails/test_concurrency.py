"""Decisions under concurrency and crashes, with real processes and separate connections.

Two evaluators started together on the same look must produce exactly one decision; a
process killed between the status change and the trigger insert must leave nothing, and
the next evaluation must then decide exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from sqlalchemy import func, select

from exp_pipeline.control.models import DecisionLog, GuardrailTrigger
from exp_pipeline.guardrails.check import evaluate_snapshots, snapshot_guardrails
from tests.guardrails.conftest import NOW, World, guarded_experiment
from tests.guardrails.test_check import breach, state

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Waits for the start file, then evaluates the stored snapshot once and prints the outcome.
EVALUATOR = """
import json, os, sys, time
from datetime import datetime
from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.guardrails import decisions
from exp_pipeline.guardrails.check import evaluate_snapshots

url, now, start_file, crash = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "crash"
if crash:
    def die(*args, **kwargs):
        os._exit(9)  # after the status change, before the trigger insert and the commit
    decisions._trigger = die
db = ControlDatabase(url, busy_timeout_s=30)
while not os.path.exists(start_file):
    time.sleep(0.005)
found = evaluate_snapshots(db, datetime.fromisoformat(now))
print(json.dumps([d.outcome for d in found]))
"""


def _spawn(url: str, start_file: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", EVALUATOR, url, NOW.isoformat(), str(start_file), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )


def _breaching_world(world: World, warehouse: duckdb.DuckDBPyConnection):
    db = world([guarded_experiment("exp")], breach("exp"))
    snapshot_guardrails(warehouse, db, NOW)
    return db


def _counts(db) -> tuple[int, int]:
    with db.session() as session:
        triggers = session.scalar(select(func.count()).select_from(GuardrailTrigger))
        pauses = session.scalar(
            select(func.count()).select_from(DecisionLog).where(DecisionLog.action == "pause")
        )
    return triggers, pauses


def test_two_concurrent_evaluators_decide_once(
    world: World, warehouse: duckdb.DuckDBPyConnection, control_url: str, tmp_path: Path
) -> None:
    db = _breaching_world(world, warehouse)
    start = tmp_path / "start"
    procs = [_spawn(control_url, start, "normal") for _ in range(2)]
    time.sleep(1.5)  # both imported and connected, waiting on the start file
    start.touch()
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes.extend(json.loads(out.strip().splitlines()[-1]))

    assert sorted(outcomes)[-1] == "paused"
    assert outcomes.count("paused") == 1
    assert set(outcomes) <= {"paused", "not_running", "already_decided"}
    assert _counts(db) == (1, 1)
    assert state(db, "exp")[0] == "paused"


def test_a_crash_between_status_change_and_trigger_leaves_nothing(
    world: World, warehouse: duckdb.DuckDBPyConnection, control_url: str, tmp_path: Path
) -> None:
    db = _breaching_world(world, warehouse)
    start = tmp_path / "start"
    start.touch()
    proc = _spawn(control_url, start, "crash")
    proc.communicate(timeout=120)
    assert proc.returncode == 9

    assert state(db, "exp") == ("running", True, None)
    assert _counts(db) == (0, 0)

    (decision,) = evaluate_snapshots(db, NOW)
    assert decision.outcome == "paused"
    assert _counts(db) == (1, 1)
