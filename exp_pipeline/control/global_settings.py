"""Global settings kept in the control database, such as the `experiments_enabled` kill switch.

Known settings have a type and a default; an unknown key or a value of the wrong type is a
one-line error, so a typo never silently leaves the kill switch where it was. Every change
of value appends a row to the decision log (experiment key `*`: it concerns all of them),
so the kill switch has the same audit trail as a pause, and the flags snapshot, whose
version counts that log, gets a new version when it is flipped.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from exp_pipeline.control.models import DecisionLog, Setting
from exp_pipeline.errors import SettingsError

DEFAULTS: dict[str, Any] = {
    # The kill switch: when false, no experiment assigns variants and guardrails do nothing.
    "experiments_enabled": True,
    # Launch review: approvals an experiment needs before it starts (0: no review).
    "min_approvals": 0,
    # When false, approvers must be listed in `approvers`; an owner never approves.
    "allow_any_approver": False,
    # Comma-separated names of the people who may approve launches.
    "approvers": "",
}

_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False, "on": True, "off": False}


def _require_known(key: str) -> None:
    if key not in DEFAULTS:
        raise SettingsError(f"unknown setting {key!r} (known: {', '.join(sorted(DEFAULTS))})")


def parse_value(key: str, text: str) -> Any:
    """Parse the command-line text `text` for setting `key` into its typed value."""
    _require_known(key)
    if isinstance(DEFAULTS[key], bool):
        try:
            return _BOOLEAN_WORDS[text.strip().lower()]
        except KeyError:
            raise SettingsError(f"setting {key!r} takes true or false, not {text!r}") from None
    if isinstance(DEFAULTS[key], int):
        if not text.strip().isdigit():
            raise SettingsError(f"setting {key!r} takes a whole number >= 0, not {text!r}")
        return int(text)
    if key == "approvers":
        return ",".join(name.strip() for name in text.split(",") if name.strip())
    return text


def get_setting(session: Session, key: str) -> Any:
    _require_known(key)
    row = session.get(Setting, key)
    return DEFAULTS[key] if row is None else json.loads(row.value)


ALL_EXPERIMENTS = "*"


def set_setting(session: Session, key: str, value: Any, *, actor: str = "system") -> None:
    """Set `key` to `value`; a real change is logged with `actor`, a no-op is not."""
    _require_known(key)
    expected = type(DEFAULTS[key])
    if type(value) is not expected:
        raise SettingsError(f"setting {key!r} takes a {expected.__name__}, not {value!r}")
    previous = get_setting(session, key)
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=json.dumps(value)))
    else:
        row.value = json.dumps(value)
    if previous != value:
        session.add(
            DecisionLog(
                experiment_id=None,
                experiment_key=ALL_EXPERIMENTS,
                action="setting",
                actor=actor,
                reason=f"{key} = {json.dumps(value)}",
                details={"key": key, "from": previous, "to": value},
            )
        )


def all_settings(session: Session) -> dict[str, Any]:
    return {key: get_setting(session, key) for key in sorted(DEFAULTS)}
