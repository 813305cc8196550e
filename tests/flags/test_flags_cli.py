"""`exp-pipeline decide` and `exp-pipeline flags export`, through click's runner on a real
home: the CLI answers what `decide` answers on the exported snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from exp_pipeline.cli import cli
from exp_pipeline.flags import decide, parse_snapshot

from .conftest import FLAG, running_catalog


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


@pytest.fixture
def synced(tmp_path: Path, home: Path) -> Path:
    """A home whose control database runs exp-a (flag-a, 50/50)."""
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump(running_catalog()), encoding="utf-8")
    assert run(home, "experiments", "sync", str(path)).exit_code == 0
    return home


def decide_json(home: Path, *args: str) -> dict:
    result = run(home, "decide", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_decide_and_export_agree(synced: Path, tmp_path: Path) -> None:
    out = tmp_path / "snap" / "flags.json"
    exported = run(synced, "flags", "export", "--output", str(out))
    assert exported.exit_code == 0, exported.output
    document = parse_snapshot(out.read_text(encoding="utf-8"))
    assert exported.stdout == f"wrote {out} (version {document['version']}, 1 flag)\n"
    for subject in ("user-1", "user-2", "user-3", "anonymous-7f3a"):
        assert decide_json(synced, FLAG, subject) == decide(document, FLAG, subject).as_dict()
    assert decide_json(synced, FLAG, "user-1")["reason"] == "experiment_assigned"


def test_decide_prints_one_line_without_json(synced: Path) -> None:
    answer = decide_json(synced, FLAG, "user-1")
    result = run(synced, "decide", FLAG, "user-1")
    assert result.stdout == (
        f"{FLAG}: {answer['variant']} for user-1 (experiment_assigned, "
        f"decision {answer['decision_id']})\n"
    )
    unknown = run(synced, "decide", "no-such-flag", "user-1")
    assert (unknown.exit_code, unknown.stdout) == (
        0,
        "no-such-flag: no variant for user-1 (unknown_flag)\n",
    )


def test_decide_follows_the_lifecycle_and_the_kill_switch(synced: Path) -> None:
    assert run(synced, "experiments", "pause", "exp-a", "--by", "alice").exit_code == 0
    paused = decide_json(synced, FLAG, "user-1")
    assert (paused["variant"], paused["reason"], paused["in_experiment"]) == (
        "control",
        "not_running",
        False,
    )
    assert run(synced, "settings", "set", "experiments_enabled", "false").exit_code == 0
    assert decide_json(synced, FLAG, "user-1")["reason"] == "experiments_disabled"


def test_decide_honours_do_not_track_attributes(synced: Path) -> None:
    assert decide_json(synced, FLAG, "user-1", "--attributes", '{"$dnt": true}') == {
        "flag": FLAG,
        "variant": "control",
        "reason": "do_not_track",
        "decision_id": None,
        "in_experiment": False,
    }


@pytest.mark.parametrize(
    ("attributes", "message"),
    [("{not json", "--attributes is not valid JSON"), ("[1]", "must be a JSON object")],
)
def test_bad_attributes_are_a_one_line_error(synced: Path, attributes: str, message: str) -> None:
    result = run(synced, "decide", FLAG, "user-1", "--attributes", attributes)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


REVIEWED_CATALOG = """\
experiments:
  - key: checkout
    name: Checkout
    feature_flag_key: checkout
    metrics: [{key: buy, kind: trend, event: purchase}]
"""


def test_reference_review_then_decide_pause_rollback_and_kill_switch(tmp_path: Path) -> None:
    """min_approvals 1: submitted, approved by another person, started; then decide
    answers experiment_assigned, not_running after a pause, rolled_back after a rollback,
    and experiments_disabled with the kill switch off."""
    home = tmp_path / "home"
    path = tmp_path / "experiments.yaml"
    path.write_text(REVIEWED_CATALOG, encoding="utf-8")

    def ok(*args: str) -> str:
        result = run(home, *args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def decision(subject: str = "user-1") -> dict:
        return json.loads(ok("decide", "checkout", subject, "--json"))

    ok("settings", "set", "min_approvals", "1")
    ok("settings", "set", "approvers", "bob")
    ok("experiments", "sync", str(path))
    refused = run(home, "experiments", "start", "checkout", "--by", "alice")
    assert refused.exit_code == 1
    assert "needs 1 approval(s)" in refused.stderr
    assert ok("experiments", "submit", "checkout", "--by", "alice").strip() == (
        "checkout: in_review"
    )
    assert run(home, "experiments", "approve", "checkout", "--by", "alice").exit_code == 1
    assert ok("experiments", "approve", "checkout", "--by", "bob").strip() == "checkout: approved"
    assert decision()["reason"] == "not_running"
    assert ok("experiments", "start", "checkout", "--by", "alice").strip() == "checkout: running"

    assigned = decision()
    assert assigned["reason"] == "experiment_assigned"
    assert assigned["decision_id"]
    assert assigned["in_experiment"] is True

    ok("experiments", "pause", "checkout", "--by", "guardrail-drill")
    assert (decision()["reason"], decision()["variant"]) == ("not_running", "control")

    ok("experiments", "resume", "checkout", "--by", "alice")
    ok("experiments", "complete", "checkout", "--outcome", "rollback", "--winner", "control")
    answers = {decision(f"user-{i}")["reason"] for i in range(50)}
    assert answers == {"rolled_back"}
    assert {decision(f"user-{i}")["variant"] for i in range(50)} == {"control"}

    ok("settings", "set", "experiments_enabled", "false")
    assert decision()["reason"] == "experiments_disabled"
