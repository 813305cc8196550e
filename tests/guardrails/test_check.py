"""Guardrail checks end to end: DuckDB aggregates, the rule, and the control-DB write-back."""

from __future__ import annotations

from datetime import timedelta

import duckdb
from sqlalchemy import select

from exp_pipeline.control.global_settings import set_setting
from exp_pipeline.control.lifecycle import get_live_experiment
from exp_pipeline.control.models import DecisionLog, GuardrailTrigger, Outcome
from exp_pipeline.guardrails.check import check_all_running_experiments, evaluate_snapshots
from tests.guardrails.conftest import NOW, World, flagged, guarded_experiment

T = "2026-11-20T11:30:00Z"  # inside the trailing hour before NOW


def breach(key: str, numerator: str = "app_error") -> list[dict]:
    """One exposure and one error (or crash) of the test variant, in the trailing hour."""
    return [
        flagged("app_exposure", "u1", T, key, "test"),
        flagged(numerator, "u1", T, key, "test"),
    ]


def state(db, key: str) -> tuple[str, bool, str | None]:
    with db.session() as session:
        experiment = get_live_experiment(session, key)
        return (
            experiment.status,
            experiment.feature_flag.active,
            experiment.feature_flag.served_variant,
        )


def triggers(db) -> list[tuple]:
    with db.session() as session:
        return [
            (t.experiment_key, t.kind, t.action, t.metric_key, t.variant, t.value, t.threshold)
            for t in session.scalars(select(GuardrailTrigger).order_by(GuardrailTrigger.id))
        ]


def test_one_exposure_and_one_error_pauses(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    db = world([guarded_experiment("exp")], breach("exp"))

    report = check_all_running_experiments(warehouse, db, NOW)

    assert (report["checked"], report["triggered"]) == (1, 1)
    assert report["decisions"][0]["outcome"] == "paused"
    assert state(db, "exp") == ("paused", False, None)
    assert triggers(db) == [("exp", "action", "pause", "error_rate", "test", 1.0, 0.10)]
    with db.session() as session:
        (trigger,) = session.scalars(select(GuardrailTrigger))
        assert trigger.observation_window_minutes == 60
        assert trigger.window_end.isoformat() == "2026-11-20T11:30:00+00:00"
        assert trigger.window_start.isoformat() == "2026-11-20T10:30:00+00:00"
        log = session.scalars(select(DecisionLog).where(DecisionLog.action == "pause")).one()
        assert (log.actor, log.from_status, log.to_status) == ("guardrail", "running", "paused")
        assert log.details["decision_key"] == trigger.decision_key


def test_one_exposure_and_one_crash_rolls_back(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    db = world(
        [guarded_experiment("exp", numerator="app_crash", threshold=0.05, action="rollback")],
        breach("exp", "app_crash"),
    )

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report["triggered"] == 1
    assert state(db, "exp") == ("completed", False, "control")
    with db.session() as session:
        outcome = session.scalars(select(Outcome)).one()
        trigger = session.scalars(select(GuardrailTrigger)).one()
        assert (outcome.outcome, outcome.winner, outcome.decided_by) == (
            "rollback",
            "control",
            "guardrail",
        )
        assert outcome.decision_key == trigger.decision_key


def test_ten_exposures_and_no_errors_change_nothing(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        flagged("app_exposure", f"u{i}", T, "exp", "test" if i % 2 else "control")
        for i in range(10)
    ]
    db = world([guarded_experiment("exp")], events)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert (report["checked"], report["triggered"]) == (1, 0)
    assert state(db, "exp") == ("running", True, None)
    assert triggers(db) == []


def test_two_breaching_experiments_are_both_checked(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        flagged(name, "u1", T, key, "test")
        for key in ("exp-a", "exp-b")
        for name in ("app_exposure", "app_error")
    ]
    db = world([guarded_experiment("exp-a"), guarded_experiment("exp-b")], events)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report["checked"] == 2
    assert report["triggered"] >= 1
    assert {state(db, k)[0] for k in ("exp-a", "exp-b")} == {"paused"}


def test_a_value_equal_to_the_threshold_does_not_fire(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [flagged("app_exposure", f"u{i}", T, "exp", "test") for i in range(10)]
    events += [flagged("app_exposure", f"c{i}", T, "exp", "control") for i in range(10)]
    events.append(flagged("app_error", "u0", T, "exp", "test"))  # 1 / 10 = the threshold
    db = world([guarded_experiment("exp", threshold=0.10)], events)

    assert check_all_running_experiments(warehouse, db, NOW)["triggered"] == 0
    assert state(db, "exp")[0] == "running"


def test_control_never_fires_and_zero_denominators_never_fire(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        flagged("app_exposure", "c1", T, "exp", "control"),
        flagged("app_error", "c1", T, "exp", "control"),  # control at 100%
        flagged("app_error", "t1", T, "exp", "test"),  # test: errors, no exposure events
    ]
    db = world([guarded_experiment("exp")], events)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report["triggered"] == 0
    assert "error_rate/test: no denominator" in report["decisions"][0]["reason"]


def test_min_sample_holds_back_small_denominators(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = breach("exp")
    db = world([guarded_experiment("exp", min_sample=5)], events)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report["triggered"] == 0
    assert "denominator 1 < min_sample 5" in report["decisions"][0]["reason"]


def test_the_trailing_window_ends_at_the_freshest_data(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Errors two hours before the newest flagged event are outside a 60-minute window."""
    events = [
        flagged("app_exposure", "u1", "2026-11-20T09:00:00Z", "exp", "test"),
        flagged("app_error", "u1", "2026-11-20T09:00:00Z", "exp", "test"),
        flagged("app_exposure", "u2", "2026-11-20T11:00:00Z", "exp", "test"),
        flagged("app_exposure", "c2", "2026-11-20T11:00:00Z", "exp", "control"),
    ]
    db = world([guarded_experiment("exp", window=60)], events)
    assert check_all_running_experiments(warehouse, db, NOW)["triggered"] == 0


def test_the_whole_window_counts_when_no_observation_window_is_set(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = [
        flagged("app_exposure", "u1", "2026-11-02T09:00:00Z", "exp", "test"),
        flagged("app_error", "u1", "2026-11-02T09:00:00Z", "exp", "test"),
        flagged("app_exposure", "c2", "2026-11-20T11:00:00Z", "exp", "control"),
    ]
    db = world([guarded_experiment("exp", window=None)], events)
    assert check_all_running_experiments(warehouse, db, NOW)["triggered"] == 1


def test_nothing_is_evaluated_with_the_kill_switch_off(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = breach("exp")
    db = world([guarded_experiment("exp")], events)
    with db.session() as session:
        set_setting(session, "experiments_enabled", False)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report == {"checked": 0, "triggered": 0, "decisions": []}
    assert state(db, "exp")[0] == "running"


def test_paused_experiments_are_never_changed_again(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    events = breach("exp")
    db = world([guarded_experiment("exp", action="pause")], events)
    check_all_running_experiments(warehouse, db, NOW)

    again = check_all_running_experiments(warehouse, db, NOW + timedelta(minutes=5))

    assert again["checked"] == 0
    assert state(db, "exp")[0] == "paused"
    assert len(triggers(db)) == 1


def test_evaluating_the_same_snapshot_twice_decides_once(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """A repeated sensor tick over the same aggregates must not decide again."""
    events = breach("exp")
    db = world([guarded_experiment("exp")], events)
    check_all_running_experiments(warehouse, db, NOW)
    with db.session() as session:  # a person resumes it; the old snapshot is still there
        from exp_pipeline.control.lifecycle import transition

        transition(session, get_live_experiment(session, "exp"), "resume", actor="alice")

    (decision,) = evaluate_snapshots(db, NOW)

    assert decision.outcome == "already_decided"
    assert state(db, "exp")[0] == "running"
    assert len(triggers(db)) == 1


def test_stale_snapshots_are_skipped_with_a_reason(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    from exp_pipeline.guardrails.check import snapshot_guardrails

    events = breach("exp")
    db = world([guarded_experiment("exp")], events)
    snapshot_guardrails(warehouse, db, NOW)

    (decision,) = evaluate_snapshots(db, NOW + timedelta(hours=1))

    assert decision.outcome == "stale"
    assert "older than 0:15:00" in decision.reason
    assert state(db, "exp")[0] == "running"


def test_broken_data_holds_with_a_warning_instead_of_acting(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Over 1% of subjects in two variants: a warning trigger, no action."""
    events = [flagged("app_exposure", f"t{i}", T, "exp", "test") for i in range(40)]
    events += [flagged("app_exposure", f"c{i}", T, "exp", "control") for i in range(40)]
    events += [flagged("app_error", f"t{i}", T, "exp", "test") for i in range(40)]
    events.append(flagged("app_exposure", "t0", T, "exp", "control"))  # t0 in both
    db = world([guarded_experiment("exp")], events)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report["triggered"] == 0
    assert report["decisions"][0]["outcome"] == "held"
    assert (
        "1 of 80 subjects with a flag signal (1.25%) were seen in two or more variants (limit 1%)"
        in report["decisions"][0]["reason"]
    )
    assert triggers(db) == [("exp", "warning", "hold", None, None, None, None)]
    assert state(db, "exp")[0] == "running"


def test_sample_ratio_mismatch_holds(world: World, warehouse: duckdb.DuckDBPyConnection) -> None:
    events = [flagged("app_exposure", f"t{i}", T, "exp", "test") for i in range(100)]
    events += [flagged("app_exposure", f"c{i}", T, "exp", "control") for i in range(40)]
    events += [flagged("app_error", f"t{i}", T, "exp", "test") for i in range(50)]
    db = world([guarded_experiment("exp")], events)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report["decisions"][0]["outcome"] == "held"
    assert "sample ratio mismatch" in report["decisions"][0]["reason"]


def test_sequential_guardrails_fire_only_when_worse_than_control(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Both variants breach the threshold equally: not harmful vs control, no action."""
    events = []
    for arm in ("control", "test"):
        events += [flagged("app_exposure", f"{arm}{i}", T, "exp", arm) for i in range(200)]
        events += [flagged("app_error", f"{arm}{i}", T, "exp", arm) for i in range(40)]
    db = world([guarded_experiment("exp", method="sequential")], events)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report["triggered"] == 0
    assert "is not yet worse than control" in report["decisions"][0]["reason"]


def test_sequential_guardrails_fire_on_clear_harm_and_keep_their_p_value(
    world: World, warehouse: duckdb.DuckDBPyConnection
) -> None:
    from exp_pipeline.control.models import GuardrailSnapshot

    events = []
    for arm, errors in (("control", 4), ("test", 60)):
        events += [flagged("app_exposure", f"{arm}{i}", T, "exp", arm) for i in range(200)]
        events += [flagged("app_error", f"{arm}{i}", T, "exp", arm) for i in range(errors)]
    db = world([guarded_experiment("exp", method="sequential")], events)

    report = check_all_running_experiments(warehouse, db, NOW)

    assert report["triggered"] == 1
    with db.session() as session:
        snapshot = session.scalars(select(GuardrailSnapshot)).one()
        assert snapshot.sequential_state["error_rate/test"] < 0.05
        trigger = session.scalars(select(GuardrailTrigger)).one()
        assert trigger.details["always_valid_p_value"] < 0.05
