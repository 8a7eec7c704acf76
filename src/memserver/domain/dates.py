"""Dates and instants as clients send them: YYYY-MM-DD, ISO-8601 datetimes, unix seconds. Always UTC out.

Each parser raises `ValueError` with the text a client sees; the filter language wraps it in its own
`FilterError`, the add and update parsers in a 400.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo


class Period(NamedTuple):
    """A half-open span of time `[start, end)`, both ends timezone-aware."""

    start: datetime
    end: datetime


# What a period's length says it is: (granularity, shortest, longest) in hours. A local day is 23 to 25 hours
# (daylight saving), a month 28 to 31 days, a meteorological season 89 to 92.
_GRANULARITIES = (
    ("day", 23, 25),
    ("week", 6.9 * 24, 7.1 * 24),
    ("month", 28 * 24, 31 * 24),
    ("season", 89 * 24, 92 * 24),
    ("year", 365 * 24, 366 * 24),
)


def parse_period(value: Any) -> Period | None:
    """The wire form of an event period, `{"start": ..., "end": ...}` (end exclusive; dates are UTC midnights,
    or ISO datetimes, or unix seconds), or null: no period."""
    if value is None:
        return None
    shape = 'event_period: use {"start": <date or datetime>, "end": <date or datetime>} (end exclusive) or null'
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise ValueError(shape)
    try:
        start, end = parse_datetime(value["start"]), parse_datetime(value["end"])
    except ValueError as exc:
        raise ValueError(f"event_period: {exc}") from None
    if end <= start:
        raise ValueError("event_period: end must be after start (the end is exclusive)")
    return Period(start, end)


def granularity(start: datetime, end: datetime) -> str:
    """day, week, month, season or year, from a period's length; else range."""
    hours = (end - start).total_seconds() / 3600
    return next((name for name, low, high in _GRANULARITIES if low <= hours <= high), "range")


def parse_datetime(value: Any, *, end_of_day: bool = False) -> datetime:
    """YYYY-MM-DD, ISO-8601 datetimes (naive = UTC) or unix seconds; returned in UTC."""
    invalid = f"invalid date {value!r}; use YYYY-MM-DD or an ISO-8601 datetime"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(invalid)
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(float(value), tz=UTC)
        s = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            d = datetime.fromisoformat(s).replace(tzinfo=UTC)
            if end_of_day:  # the end of 9999-12-31 is the last representable instant
                return d + timedelta(days=1) if d.date() < date.max else datetime.max.replace(tzinfo=UTC)
            return d
        d = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        # in UTC, so an out-of-range instant (9999-12-31T23:00-05:00) fails here, not in the database
        return d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError(invalid) from None


def parse_timestamp(value: int | float | str) -> datetime:
    """Unix seconds (int/float, or a numeric string) or an ISO-8601 string."""
    try:
        if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
            value = float(value)
        return parse_datetime(value)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"invalid timestamp {value!r}: use unix seconds or ISO-8601") from None


def to_date(value: date | datetime) -> date:
    """The calendar day of a date, or of a datetime in UTC (naive = UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    return value


def time_zone(name: str) -> tzinfo:
    """An IANA time zone ("Europe/Paris"); ValueError with the client's text otherwise."""
    zone = parse_zone(name)
    assert zone is not None  # a name was given
    return zone


def observation(on_date: date | None, at: datetime | None, zone: str | None) -> datetime | None:
    """The observation moment an add names (the spec's `observation_datetime`, else `observation_date`): a naive
    datetime is wall time in `zone` (else UTC); a bare date is that day's noon there (noon: the same calendar
    day in every zone a later conversion might use). None when neither is given."""
    tz = time_zone(zone) if zone else UTC
    if at is not None:
        return at.replace(tzinfo=tz) if at.tzinfo is None else at
    if on_date is not None:
        return datetime.combine(on_date, time(12), tzinfo=tz)
    return None


def parse_as_of(value: Any) -> datetime | None:
    """An instant a client names (`as_of`): unix seconds (a number or a numeric string; |x| >= 1e11 is
    milliseconds, a JavaScript `Date.now()`), YYYY-MM-DD (the end of that day, UTC) or an ISO-8601 datetime
    (naive = UTC); None when absent. Returned in UTC."""
    if value is None:
        return None
    invalid = f"as_of: invalid value '{str(value)[:60]}'; use unix seconds, YYYY-MM-DD or an ISO-8601 datetime"
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = value / 1000 if abs(value) >= 1e11 else value
    elif not isinstance(value, str) or not value.strip():
        raise ValueError(invalid)
    try:
        at = parse_datetime(value)
    except ValueError:
        raise ValueError(invalid) from None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        at = at.replace(hour=23, minute=59, second=59, microsecond=999_999)  # the day's last instant
    return at


# -- a search's "now" ------------------------------------------------------------------------------------
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
MILLISECONDS_FROM = 1e11  # unix seconds this large are year 5138: the value is milliseconds (JS Date.now())


def parse_zone(value: Any) -> tzinfo | None:
    """An IANA time zone name ("Europe/Paris"), or None when none is given."""
    if value is None:
        return None
    unknown = f'timezone: unknown time zone {str(value)[:60]!r}; use an IANA name such as "Europe/Paris"'
    if not isinstance(value, str) or not value.strip():
        raise ValueError(unknown)
    try:
        return ZoneInfo(value.strip())
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError; "../x" a ValueError
        raise ValueError(unknown) from None


def parse_reference(value: Any, zone: tzinfo | None) -> datetime:
    """The instant a search takes as "now", aware, in the query's zone: `zone`, else the value's own offset,
    else UTC. Unix seconds (milliseconds from 1e11), a date (its last microsecond: the whole day has passed),
    or an ISO-8601 datetime (with an offset: that instant; without: wall time in the zone)."""
    invalid = f"reference_date: invalid value {str(value)[:60]!r}; use unix seconds, YYYY-MM-DD or an ISO-8601 datetime"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(invalid)
    try:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, (int, float)):
            seconds = value / 1000 if abs(value) >= MILLISECONDS_FROM else value
            return datetime.fromtimestamp(seconds, tz=zone or UTC)
        s = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            return datetime.combine(date.fromisoformat(s), time.max, tzinfo=zone or UTC)
        if not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d", s):
            raise ValueError(invalid)
        d = datetime.fromisoformat(s)
        if d.tzinfo is None:
            return d.replace(tzinfo=zone or UTC).astimezone(zone or UTC)  # normalises a nonexistent wall time
        d.astimezone(UTC)  # out of range (9999-12-31T23:00-05:00) fails here, not later
        return d.astimezone(zone) if zone is not None else d
    except (ValueError, OverflowError, OSError):
        raise ValueError(invalid) from None
