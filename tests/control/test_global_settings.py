"""Global settings: the experiments_enabled kill switch, typed, with one-line errors."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.control.global_settings import (
    DEFAULTS,
    all_settings,
    get_setting,
    parse_value,
    set_setting,
)
from exp_pipeline.control.models import DecisionLog, Setting
from exp_pipeline.errors import SettingsError

from .conftest import Control


def test_the_only_known_setting_is_the_kill_switch() -> None:
    """Pins the documented settings, so a new one comes with its own tests."""
    assert DEFAULTS == {
        "experiments_enabled": True,
        "min_approvals": 0,
        "allow_any_approver": False,
        "approvers": "",
    }


def test_experiments_enabled_defaults_to_true_without_a_row(control: Control) -> None:
    """A fresh database has no settings rows; the default applies."""
    with control.db.session() as session:
        assert get_setting(session, "experiments_enabled") is True
        assert all_settings(session) == {
            "experiments_enabled": True,
            "min_approvals": 0,
            "allow_any_approver": False,
            "approvers": "",
        }
    assert control.count("settings") == 0


def test_set_and_get_round_trip_across_transactions(db: ControlDatabase) -> None:
    """Values survive a commit and a new handle, and updating reuses the one row."""
    for value in (False, True, False):
        with db.session() as session:
            set_setting(session, "experiments_enabled", value)
        other = ControlDatabase(db.url)
        try:
            with other.session() as session:
                assert get_setting(session, "experiments_enabled") is value
                assert all_settings(session)["experiments_enabled"] is value
        finally:
            other.dispose()
    with db.engine.connect() as conn:
        rows = conn.execute(select(Setting.key, Setting.value)).all()
    assert [tuple(r) for r in rows] == [("experiments_enabled", "false")]


def test_a_failed_transaction_leaves_the_switch_where_it_was(db: ControlDatabase) -> None:
    """A set inside a rolled-back transaction must not flip the switch."""
    with pytest.raises(RuntimeError), db.session() as session:
        set_setting(session, "experiments_enabled", False)
        raise RuntimeError("boom")
    with db.session() as session:
        assert get_setting(session, "experiments_enabled") is True


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("False", False),
        ("1", True),
        ("0", False),
        ("on", True),
        ("off", False),
        ("  On \n", True),
    ],
)
def test_parse_value_accepts_boolean_words(text: str, value: bool) -> None:
    """What a user types after `settings set experiments_enabled`."""
    assert parse_value("experiments_enabled", text) is value


@pytest.mark.parametrize("text", ["", "yes", "no", "maybe", "2", "truee", "t"])
def test_parse_value_rejects_junk_with_one_line(text: str) -> None:
    """A typo must never silently leave the kill switch where it was."""
    with pytest.raises(SettingsError) as excinfo:
        parse_value("experiments_enabled", text)
    assert str(excinfo.value) == f"setting 'experiments_enabled' takes true or false, not {text!r}"


@pytest.mark.parametrize("value", ["false", 0, 1, None])
def test_set_setting_rejects_values_of_the_wrong_type(db: ControlDatabase, value: Any) -> None:
    """`"false"` is truthy and `0` is not a bool: only real booleans are stored."""
    with pytest.raises(SettingsError) as excinfo, db.session() as session:
        set_setting(session, "experiments_enabled", value)
    assert str(excinfo.value) == f"setting 'experiments_enabled' takes a bool, not {value!r}"
    with db.session() as session:
        assert get_setting(session, "experiments_enabled") is True


def test_unknown_keys_are_rejected_everywhere(db: ControlDatabase) -> None:
    """A misspelt key is an error on parse, get and set, listing the known keys."""
    message = (
        "unknown setting 'experiments_enable' "
        "(known: allow_any_approver, approvers, experiments_enabled, min_approvals)"
    )
    with pytest.raises(SettingsError) as excinfo:
        parse_value("experiments_enable", "true")
    assert str(excinfo.value) == message
    with db.session() as session:
        with pytest.raises(SettingsError) as excinfo:
            get_setting(session, "experiments_enable")
        assert str(excinfo.value) == message
        with pytest.raises(SettingsError) as excinfo:
            set_setting(session, "experiments_enable", True)
        assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("min_approvals", "2", 2),
        ("min_approvals", " 0 ", 0),
        ("allow_any_approver", "true", True),
        ("approvers", " alice, bob ,, carol ", "alice,bob,carol"),
    ],
)
def test_review_settings_parse(key: str, text: str, value: object) -> None:
    """The launch-review settings take a count, a switch and a list of names."""
    assert parse_value(key, text) == value


@pytest.mark.parametrize("text", ["-1", "two", "1.5", ""])
def test_min_approvals_must_be_a_whole_number(text: str) -> None:
    with pytest.raises(SettingsError, match="takes a whole number >= 0"):
        parse_value("min_approvals", text)


def test_every_change_of_a_setting_is_an_audit_row_and_a_no_op_is_not(control: Control) -> None:
    """The kill switch has the same audit trail as a pause: who, when, from, to."""
    with control.db.session() as session:
        set_setting(session, "experiments_enabled", False, actor="oncall")
    with control.db.session() as session:
        set_setting(session, "experiments_enabled", False, actor="oncall")  # no change
        set_setting(session, "min_approvals", 2, actor="lead")
    with control.db.session() as session:
        rows = [
            (r.experiment_id, r.experiment_key, r.action, r.actor, r.reason, r.details)
            for r in session.scalars(select(DecisionLog).order_by(DecisionLog.id))
        ]
    assert rows == [
        (
            None,
            "*",
            "setting",
            "oncall",
            "experiments_enabled = false",
            {"key": "experiments_enabled", "from": True, "to": False},
        ),
        (
            None,
            "*",
            "setting",
            "lead",
            "min_approvals = 2",
            {"key": "min_approvals", "from": 0, "to": 2},
        ),
    ]
