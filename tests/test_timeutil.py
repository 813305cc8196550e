"""Catalog datetimes become UTC instants by the architecture's rules.

Expected instants are computed independently with pandas' time-zone database handling.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from exp_pipeline.timeutil import iso_utc, to_utc_instant, zone


@pytest.mark.parametrize(
    ("text", "timezone", "expected"),
    [
        ("2026-11-01T00:00:00Z", "Europe/Amsterdam", "2026-11-01T00:00:00Z"),
        ("2026-11-01T02:30:00+02:00", "UTC", "2026-11-01T00:30:00Z"),
        ("2026-11-01T02:30:00-05:00", "Asia/Tokyo", "2026-11-01T07:30:00Z"),
        ("2026-11-01T00:00", "Europe/Amsterdam", "2026-11-01T00:00:00Z"),  # naive = UTC
        ("2026-11-01 12:00:00", "America/New_York", "2026-11-01T12:00:00Z"),  # space
        ("2026-11-01T12:00:00.250Z", "UTC", "2026-11-01T12:00:00.250000Z"),
    ],
)
def test_offsets_are_honoured_and_naive_means_utc(text: str, timezone: str, expected: str) -> None:
    instant = to_utc_instant(text, timezone)
    assert instant.tzinfo is UTC
    assert iso_utc(instant) == expected
    stamp = pd.Timestamp(text)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    assert instant == stamp.to_pydatetime()


@pytest.mark.parametrize(
    ("day", "timezone"),
    [
        ("2026-11-01", "UTC"),
        ("2026-11-01", "Europe/Amsterdam"),  # UTC+1 in November
        ("2026-07-01", "Europe/Amsterdam"),  # UTC+2 in summer
        ("2026-03-29", "Europe/Amsterdam"),  # the day DST starts: midnight is still +1
        ("2026-11-01", "America/Los_Angeles"),  # DST ends that day at 02:00
        ("2026-11-01", "Asia/Kathmandu"),  # +05:45
    ],
)
def test_a_date_alone_is_midnight_in_the_experiment_timezone(day: str, timezone: str) -> None:
    expected = pd.Timestamp(day).tz_localize(timezone).tz_convert("UTC").to_pydatetime()
    assert to_utc_instant(day, timezone) == expected
    assert to_utc_instant(date.fromisoformat(day), timezone) == expected


def test_datetime_objects_from_yaml_follow_the_same_rules() -> None:
    naive = datetime(2026, 11, 1, 9, 0)
    aware = datetime.fromisoformat("2026-11-01T09:00:00+01:00")
    assert iso_utc(to_utc_instant(naive, "Asia/Tokyo")) == "2026-11-01T09:00:00Z"
    assert iso_utc(to_utc_instant(aware, "UTC")) == "2026-11-01T08:00:00Z"


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-11-01T25:00", ""])
def test_unparseable_values_name_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO 8601 date or datetime"):
        to_utc_instant(text, "UTC")


def test_zone_rejects_unknown_names_readably() -> None:
    assert zone("Europe/Amsterdam").key == "Europe/Amsterdam"
    with pytest.raises(ValueError, match="'Mars/Olympus' is not a valid IANA timezone name"):
        zone("Mars/Olympus")


def test_iso_utc_treats_naive_as_utc_and_keeps_none() -> None:
    assert iso_utc(None) is None
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"
