"""Turning catalog datetimes into absolute UTC instants.

The rules (the same as the event contract, plus calendar days): an explicit offset or `Z`
is honoured; a naive datetime is UTC; a date alone is midnight in the experiment's
timezone. Windows become UTC instants here, in Python, before they reach any SQL
engine, so no engine's session time zone can change what they mean.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def zone(name: str) -> ZoneInfo:
    """Return the IANA zone `name`, or raise ValueError with a readable message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"{name!r} is not a valid IANA timezone name") from exc


def to_utc_instant(value: str | datetime | date, timezone: str) -> datetime:
    """Parse a catalog datetime into an aware UTC datetime.

    `timezone` is only used for a date without a time (midnight of that calendar day).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone(timezone)).astimezone(UTC)
    else:
        text = value.strip()
        try:
            if _DATE_ONLY.match(text):
                return to_utc_instant(date.fromisoformat(text), timezone)
            parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO 8601 date or datetime") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_utc(instant: datetime | None) -> str | None:
    """Format an instant as ISO 8601 with a `Z` suffix (None stays None)."""
    if instant is None:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
