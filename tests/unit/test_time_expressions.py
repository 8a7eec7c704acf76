"""The temporal test set: English time expressions become exact ranges, relative to a reference instant.

The reference is Friday 2025-03-21 12:00 UTC unless a case says otherwise; ranges are half-open, in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from memserver.domain.dates import parse_reference, parse_zone
from memserver.pipeline.query import REPORT_LAG, hints, names
from memserver.pipeline.time_expressions import event_period, find

REF = datetime(2025, 3, 21, 12, tzinfo=UTC)  # a Friday


def d(y: int, m: int, day: int, h: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, day, h, minute, tzinfo=UTC)


def one(text: str, ref: datetime = REF) -> tuple[datetime, datetime]:
    found = find(text, ref)
    assert len(found) == 1, (text, found)
    return found[0].start, found[0].end


CALENDAR = [
    ("What did I eat today?", d(2025, 3, 21), d(2025, 3, 22)),
    ("Who called yesterday?", d(2025, 3, 20), d(2025, 3, 21)),
    ("What is planned for tomorrow?", d(2025, 3, 22), d(2025, 3, 23)),
    ("Where was I the day before yesterday?", d(2025, 3, 19), d(2025, 3, 20)),
    ("the day after tomorrow", d(2025, 3, 23), d(2025, 3, 24)),
    ("Which city did I meet Maya in last week?", d(2025, 3, 10), d(2025, 3, 17)),
    ("What happened this week?", d(2025, 3, 17), d(2025, 3, 24)),
    ("What is on next week?", d(2025, 3, 24), d(2025, 3, 31)),
    ("What did we do last weekend?", d(2025, 3, 15), d(2025, 3, 17)),
    ("plans for this weekend", d(2025, 3, 22), d(2025, 3, 24)),
    ("bills this month", d(2025, 3, 1), d(2025, 4, 1)),
    ("bills last month", d(2025, 2, 1), d(2025, 3, 1)),
    ("bills next month", d(2025, 4, 1), d(2025, 5, 1)),
    ("trips last year", d(2024, 1, 1), d(2025, 1, 1)),
    ("trips this year", d(2025, 1, 1), d(2026, 1, 1)),
    ("Where did I go in March 2025?", d(2025, 3, 1), d(2025, 4, 1)),
    ("What happened on March 3, 2025?", d(2025, 3, 3), d(2025, 3, 4)),
    ("What happened on 3 March 2025?", d(2025, 3, 3), d(2025, 3, 4)),
    ("notes from 2025-03-03", d(2025, 3, 3), d(2025, 3, 4)),
    ("How often did I swim in 2024?", d(2024, 1, 1), d(2025, 1, 1)),
    ("between January and March 2025", d(2025, 1, 1), d(2025, 4, 1)),
    ("between 2025-01-05 and 2025-01-10", d(2025, 1, 5), d(2025, 1, 11)),  # the end day is included
    ("between March 2025 and January 2025", d(2025, 1, 1), d(2025, 4, 1)),  # reversed: swapped
    ("from May 2024 to July 2024", d(2024, 5, 1), d(2024, 8, 1)),
    ("Who did I see 3 days ago?", d(2025, 3, 18), d(2025, 3, 19)),
    ("two weeks ago", d(2025, 3, 3), d(2025, 3, 10)),  # the ISO week of 03-07
    ("a few days ago", d(2025, 3, 17), d(2025, 3, 20)),  # 2 to 4 days ago
    ("a couple of days ago", d(2025, 3, 19), d(2025, 3, 20)),
    ("three months ago", d(2024, 12, 1), d(2025, 1, 1)),
    ("in two days", d(2025, 3, 23), d(2025, 3, 24)),
    ("in 2 weeks", d(2025, 3, 31), d(2025, 4, 7)),
    ("as of March 2025", d(2025, 3, 1), d(2025, 4, 1)),
    ("last summer", d(2024, 6, 1), d(2024, 9, 1)),
    ("last winter", d(2024, 12, 1), d(2025, 3, 1)),
    ("last fall", d(2024, 9, 1), d(2024, 12, 1)),
    ("in the summer of 2023", d(2023, 6, 1), d(2023, 9, 1)),
    ("last Friday", d(2025, 3, 14), d(2025, 3, 15)),  # on a Friday: the one before
    ("What did I do on Monday?", d(2025, 3, 17), d(2025, 3, 18)),
    ("on Friday", d(2025, 3, 21), d(2025, 3, 22)),  # today is one
    ("next Tuesday", d(2025, 3, 25), d(2025, 3, 26)),
    ("this Sunday", d(2025, 3, 23), d(2025, 3, 24)),
    ("last March", d(2024, 3, 1), d(2024, 4, 1)),  # this March has not ended
    ("next March", d(2026, 3, 1), d(2026, 4, 1)),
]


@pytest.mark.parametrize(("text", "start", "end"), CALENDAR)
def test_calendar_expressions_name_exact_ranges(text: str, start: datetime, end: datetime) -> None:
    assert one(text) == (start, end)


def test_open_ranges_run_up_to_now() -> None:
    since = find("Has she been vegan since 2024?", REF)
    assert [(r.start, r.end, r.open_end) for r in since] == [(d(2024, 1, 1), REF, True)]
    assert one("What have I been reading recently?") == (REF - timedelta(days=30), REF)
    assert one("What do I do currently?") == (REF - timedelta(days=30), d(2025, 3, 22))
    assert one("what about these days") == one("right now") == one("nowadays") == one("currently")


def test_a_month_without_a_year_is_that_month_of_any_year() -> None:
    (r,) = find("Where did I go in March?", REF)
    assert r.month == 3
    assert (r.start, r.end) == (d(2025, 3, 1), d(2025, 4, 1))  # shown in the reference year
    assert find("since June", REF)[0].month == 6  # "since" a yearless month keeps meaning that month
    assert [x.month for x in find("mid-March and early May", REF)] == [3, 5]


def test_last_weekend_on_a_sunday_is_the_one_before() -> None:
    sunday = d(2025, 3, 23, 12)
    assert one("last weekend", sunday) == (d(2025, 3, 15), d(2025, 3, 17))
    assert one("this weekend", sunday) == (d(2025, 3, 22), d(2025, 3, 24))


# ----------------------------------------------------------------------------------------------
# zones, reference forms and overflow
# ----------------------------------------------------------------------------------------------
def test_days_are_the_reference_zones_days() -> None:
    tokyo_half_past_midnight = datetime(2025, 3, 21, 0, 30, tzinfo=timezone(timedelta(hours=9)))
    assert one("yesterday", tokyo_half_past_midnight) == (d(2025, 3, 19, 15), d(2025, 3, 20, 15))
    late_evening_new_york = datetime(2025, 3, 21, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert one("today", late_evening_new_york) == (d(2025, 3, 21, 5), d(2025, 3, 22, 5))


def test_a_named_zone_with_unix_seconds() -> None:
    ref = parse_reference(int(d(2025, 3, 20, 16).timestamp()), parse_zone("Asia/Tokyo"))  # 01:00 on the 21st there
    assert one("today", ref) == (d(2025, 3, 20, 15), d(2025, 3, 21, 15))


def test_a_daylight_saving_day_is_23_hours() -> None:
    ref = datetime(2025, 3, 31, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    start, end = one("yesterday", ref)  # Sunday 30 March: clocks went forward
    assert (start, end) == (d(2025, 3, 29, 23), d(2025, 3, 30, 22))
    assert end - start == timedelta(hours=23)


def test_reference_forms() -> None:
    utc = parse_zone(None)
    assert parse_reference("2025-03-21", utc) == datetime(2025, 3, 21, 23, 59, 59, 999999, tzinfo=UTC)
    assert one("yesterday", parse_reference("2025-03-21", utc)) == (d(2025, 3, 20), d(2025, 3, 21))
    seconds = int(REF.timestamp())
    assert parse_reference(seconds, utc) == REF
    assert parse_reference(str(seconds), utc) == REF
    assert parse_reference(seconds * 1000, utc) == REF  # JavaScript's Date.now(): milliseconds
    paris = parse_reference("2025-03-21T08:00:00+01:00", None)
    assert paris.utcoffset() == timedelta(hours=1)
    assert one("today", paris) == (d(2025, 3, 20, 23), d(2025, 3, 21, 23))
    wall = parse_reference("2025-03-21T08:00:00", parse_zone("America/New_York"))
    assert wall == datetime(2025, 3, 21, 12, tzinfo=UTC)


@pytest.mark.parametrize("value", ["yesterday", {}, [], True, "2025-13-01", "", "12:00"])
def test_invalid_references_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="reference_date: invalid value"):
        parse_reference(value, None)


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone: unknown time zone 'Mars/Olympus'"):
        parse_zone("Mars/Olympus")


def test_a_range_past_the_calendar_is_ignored() -> None:
    assert find("next year", datetime(9999, 12, 31, 12, tzinfo=UTC)) == []
    assert one("yesterday", datetime(9999, 12, 31, 12, tzinfo=UTC)) == (d(9999, 12, 30), d(9999, 12, 31))


# ----------------------------------------------------------------------------------------------
# false positives
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Did May like the film?",
        "May I ask you something?",
        "I went shopping with May",
        "they march in the parade",
        "I need a second opinion",
        "I fall asleep early",
        "She drinks spring water",
        "a 2 days' hike",
        "meet me in room 2024",
        "Friday the cat was hungry",
        "I may go there",
        "What do you know about me?",
        "an hour ago",  # times of day are not read
    ],
)
def test_words_that_only_look_like_dates_name_no_time(text: str) -> None:
    assert find(text, REF) == []


def test_the_same_words_in_date_context_do() -> None:
    assert find("Did she visit in May?", REF)[0].month == 5
    assert one("last fall") == (d(2024, 9, 1), d(2024, 12, 1))
    assert one("in 2024") == (d(2024, 1, 1), d(2025, 1, 1))
    assert one("May 3, 2024") == (d(2024, 5, 3), d(2024, 5, 4))
    assert one("They march on Monday") == (d(2025, 3, 17), d(2025, 3, 18))  # Monday is the date, not "march"


def test_may_the_name_is_a_name() -> None:
    assert names("Did May go?") == ["may"]
    assert names("Where did May go in May?") == ["may"]
    assert names("May I ask where Tom went?") == ["tom"]
    assert names("What happened in May 2023?") == []


def test_a_query_naming_no_time_has_no_time_hints() -> None:
    h = hints("What does Caroline like to paint?", REF)
    assert (h.periods, h.months, h.ranges) == ([], [], [])


def test_recorded_windows_lag_a_week_except_open_and_future_ranges() -> None:
    h = hints("last week, next week and recently", REF)
    assert h.periods == [
        (d(2025, 3, 10), d(2025, 3, 17) + REPORT_LAG),
        (d(2025, 3, 24), d(2025, 3, 31)),
        (REF - timedelta(days=30), REF),
    ]


# ----------------------------------------------------------------------------------------------
# the period a text is about (verbatim adds)
# ----------------------------------------------------------------------------------------------
def test_overlapping_expressions_narrow_each_other_and_the_first_wins() -> None:
    assert event_period("Last year we went to Paris in March", REF) == (d(2024, 3, 1), d(2024, 4, 1))
    assert event_period("Yesterday I booked the flight for next month", REF) == (d(2025, 3, 20), d(2025, 3, 21))
    assert event_period("I like sushi", REF) is None


def test_a_yearless_month_is_the_nearest_one() -> None:
    assert event_period("We were in Rome in February", REF) == (d(2025, 2, 1), d(2025, 3, 1))
    september = datetime(2025, 9, 2, tzinfo=UTC)
    assert event_period("We go to Rome in October", september) == (d(2025, 10, 1), d(2025, 11, 1))


def test_event_periods_use_the_adds_zone() -> None:
    observed = d(2025, 3, 20, 16)  # 01:00 on the 21st in Tokyo
    tokyo = ZoneInfo("Asia/Tokyo")
    assert event_period("dinner yesterday", observed, tokyo) == (d(2025, 3, 19, 15), d(2025, 3, 20, 15))
    assert event_period("dinner yesterday", observed) == (d(2025, 3, 19), d(2025, 3, 20))
