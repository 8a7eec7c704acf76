"""The patterns of English time expressions, relative to a reference instant (pure; see
`pipeline.time_expressions` for what reads them and why).

Days are the reference's local days (its time zone), converted to UTC; weeks are ISO weeks (Monday first);
seasons are the northern meteorological ones (winter YYYY is December YYYY to February YYYY+1). Patterns run at
one word each, the longest match wins; a date that does not exist (31 February, year 10000) matches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from memserver.pipeline.time_words import (
    CONTEXT,
    CURRENT,
    MONTHS,
    NUMBER_WORDS,
    RECENT,
    RELATIVE_DAYS,
    SEASONS,
    UNITS,
    VAGUE,
    WEEKDAYS,
    Words,
)


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime
    granularity: str
    month: int | None = None
    open_end: bool = False


Match = tuple[int, Span]  # (the index after the expression, its span)


class Reader:
    """The patterns, over one text's words, relative to one reference instant (aware, in the query's zone)."""

    def __init__(self, words: Words, ref: datetime) -> None:
        self.w = words
        self.ref = ref
        self.zone: tzinfo = ref.tzinfo or UTC
        self.today = ref.date()

    # -- building spans from local days ----------------------------------------------------------------
    def instant(self, d: date) -> datetime:
        return datetime.combine(d, time(), tzinfo=self.zone).astimezone(UTC)

    def days(self, first: date, after: date, granularity: str, month: int | None = None) -> Span:
        return Span(self.instant(first), self.instant(after), granularity, month)

    def unit(self, kind: str, d: date) -> Span:
        """The calendar unit (day, ISO week, month, year) that contains local day `d`."""
        if kind == "day":
            return self.days(d, d + timedelta(days=1), "day")
        if kind == "week":
            monday = d - timedelta(days=d.weekday())
            return self.days(monday, monday + timedelta(days=7), "week")
        if kind == "month":
            return self.month(d.year, d.month)
        return self.days(date(d.year, 1, 1), date(d.year + 1, 1, 1), "year")

    def month(self, year: int, month: int, *, any_year: bool = False) -> Span:
        first = date(year, month, 1)
        return self.days(first, add_months(first, 1), "month", month=month if any_year else None)

    def season(self, year: int, name: str) -> Span:
        first = date(year, SEASONS[name], 1)
        return self.days(first, add_months(first, 3), "season")

    def shifted(self, kind: str, n: int) -> date:
        """Today moved by n units."""
        if kind == "day":
            return self.today + timedelta(days=n)
        if kind == "week":
            return self.today + timedelta(weeks=n)
        if kind == "month":
            return add_months(self.today, n)
        return self.today.replace(year=self.today.year + n, day=min(self.today.day, 28))

    # -- the patterns ---------------------------------------------------------------------------------
    def longest(self, i: int) -> Match | None:
        best: Match | None = None
        for rule in (self.context, self.since, self.between, self.as_of, self.atom):
            try:
                found = rule(i)
            except (ValueError, OverflowError):  # 31 February, year 10000, ...
                continue
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        return best

    def context(self, i: int) -> Match | None:
        """A temporal word, then a date: "in March", "on Friday", "in 2024", "in two days", "during the summer"."""
        word = self.w.at(i)
        if word not in CONTEXT or word in ("last", "this", "next", "previous", "between", "since"):
            return None
        k = i + 1
        if word == "in":
            ahead = self.ahead(k, +1)
            if ahead is not None:
                return ahead
        if self.w.at(k) in WEEKDAYS:
            # "on Friday": today if it is one, else the last one; "by/until/before Friday": the next one
            forward = word in ("by", "until", "till", "before")
            return k + 1, self.weekday(WEEKDAYS[self.w.at(k)], "next" if forward else "on")
        return self.atom(k + (self.w.at(k) == "the"), context=True)

    def since(self, i: int) -> Match | None:
        """ "since X": from X up to now (a month without a year keeps meaning that month of any year)."""
        if self.w.at(i) != "since":
            return None
        found = self.atom(i + 1 + (self.w.at(i + 1) == "the"), context=True)
        if found is None:
            return None
        j, x = found
        if x.month is not None or x.start >= self.ref:
            return found
        return j, Span(x.start, max(self.ref, x.start + timedelta(microseconds=1)), "range", open_end=True)

    def between(self, i: int) -> Match | None:
        """ "between X and Y", "from X to Y": the hull of both (a yearless month takes the other's year)."""
        word = self.w.at(i)
        if word not in ("between", "from"):
            return None
        first = self.atom(i + 1, context=True)
        if first is None:
            return None
        k, x = first
        if self.w.at(k) not in (("and",) if word == "between" else ("to", "until", "till", "through")):
            return None
        second = self.atom(k + 1, context=True)
        if second is None:
            return None
        j, y = second
        x, y = self.same_years(x, y)
        return j, Span(min(x.start, y.start), max(x.end, y.end), "range")

    def as_of(self, i: int) -> Match | None:
        if self.w.at(i) != "as" or self.w.at(i + 1) != "of":
            return None
        return self.atom(i + 2, context=True)

    def atom(self, i: int, *, context: bool = False) -> Match | None:
        """A date expression that stands on its own, or (`context`) one a temporal word introduced."""
        word = self.w.at(i)
        if word == "#d":
            y, m, d = self.w.iso[i]
            day = date(y, m, d)
            return i + 1, self.days(day, day + timedelta(days=1), "day")
        if word == "#m":
            y, m = self.w.iso[i]
            return i + 1, self.month(y, m)
        if word in RELATIVE_DAYS:
            return i + 1, self.unit("day", self.shifted("day", RELATIVE_DAYS[word]))
        if word in CURRENT or (word, self.w.at(i + 1)) in (("these", "days"), ("right", "now")):
            j = i + 1 if word in CURRENT else i + 2
            current = CURRENT.get(word, True)
            end = self.instant(self.today + timedelta(days=1)) if current else self.ref
            return j, Span(self.ref - RECENT, end, "range", open_end=True)
        if word == "the":
            return self.the(i + 1)
        if word in ("last", "this", "next", "previous", "past", "coming"):
            return self.relative(i)
        if word in MONTHS:
            return self.month_first(i, context)
        n = self.w.number(i)
        if n is not None:
            return self.number_first(i, n, context)
        if word in NUMBER_WORDS or word in VAGUE:
            return self.ago(i)
        if word in SEASONS:
            return self.season_named(i, context)
        if context and word in WEEKDAYS:
            return i + 1, self.weekday(WEEKDAYS[word], "on")
        return None

    def the(self, i: int) -> Match | None:
        """ "the day before yesterday", "the day after tomorrow", "the last/past/next ..." """
        if self.w.at(i) == "day" and self.w.at(i + 1) in ("before", "after"):
            after = self.w.at(i + 2)
            if (self.w.at(i + 1), after) in (("before", "yesterday"), ("after", "tomorrow")):
                return i + 3, self.unit("day", self.shifted("day", -2 if after == "yesterday" else 2))
            return None
        if self.w.at(i) in ("last", "past", "next", "previous", "coming"):
            return self.relative(i)
        return None

    def relative(self, i: int) -> Match | None:
        """last/this/next + week, weekend, month, year, a season, a weekday or a month; past/last N units."""
        word, what = self.w.at(i), self.w.at(i + 1)
        step = {"last": -1, "previous": -1, "past": -1, "this": 0, "next": 1, "coming": 1}[word]
        if word in ("past", "last", "next") and (self.w.number(i + 1) or what in NUMBER_WORDS or what == "few"):
            rolling = self.rolling(i + 1, step)
            if rolling is not None:
                return rolling
        if word == "past" and UNITS.get(what) in ("week", "month", "year"):
            n = {"week": 7, "month": 30, "year": 365}[UNITS[what]]
            return i + 2, Span(self.ref - timedelta(days=n), self.ref, "range", open_end=True)
        if word == "past":
            return None
        if what in ("week", "month", "year"):
            return i + 2, self.unit(what, self.shifted(what, step))
        if what == "weekend":
            saturday = self.today - timedelta(days=self.today.weekday()) + timedelta(days=5 + 7 * step)
            return i + 2, self.days(saturday, saturday + timedelta(days=2), "weekend")
        if what in SEASONS:
            return i + 2, self.season_step(what, step)
        if what in WEEKDAYS:
            return i + 2, self.weekday(WEEKDAYS[what], {-1: "last", 0: "this", 1: "next"}[step])
        if what in MONTHS:
            month, start = MONTHS[what], date(self.today.year, MONTHS[what], 1)
            current = date(self.today.year, self.today.month, 1)
            if step < 0:  # the latest one that ended before this month began
                year = self.today.year if add_months(start, 1) <= current else self.today.year - 1
            elif step > 0:  # the first one that begins after this month
                year = self.today.year if start > current else self.today.year + 1
            else:
                year = self.today.year
            return i + 2, self.month(year, month)
        return None

    def rolling(self, i: int, step: int) -> Match | None:
        """ "the last 3 days", "the past two weeks", "the next few days": from now back (or on) N units."""
        counts = self.count(i)
        if counts is None:
            return None
        k, _low, high = counts
        kind = UNITS.get(self.w.at(k))
        if kind is None:
            return None
        if step < 0:
            return k + 1, Span(self.instant(self.shifted(kind, -high)), self.ref, "range", open_end=True)
        return k + 1, Span(self.ref, self.instant(self.shifted(kind, high) + timedelta(days=1)), "range")

    def count(self, i: int) -> tuple[int, int, int] | None:
        """A count of units: (the index after it, the least and the most it may mean): 3, three, a, a few..."""
        word = self.w.at(i)
        if word in ("a", "an") and self.w.at(i + 1) in VAGUE:
            i, word = i + 1, self.w.at(i + 1)
        if word in VAGUE:
            low, high = VAGUE[word]
            return i + 1 + (self.w.at(i + 1) == "of"), low, high
        n = self.w.number(i)
        if n is None:
            n = NUMBER_WORDS.get(word)
        if n is None or n > 10_000:
            return None
        return i + 1, n, n

    def ago(self, i: int) -> Match | None:
        """ "3 days ago", "two weeks ago", "a few days ago": the calendar unit(s) that many units back."""
        counts = self.count(i)
        if counts is None:
            return None
        k, low, high = counts
        kind = UNITS.get(self.w.at(k))
        if kind is None:
            return None
        if self.w.at(k + 1) == "ago":
            first, last = self.unit(kind, self.shifted(kind, -high)), self.unit(kind, self.shifted(kind, -low))
            return k + 2, Span(first.start, last.end, first.granularity if low == high else "range")
        if (self.w.at(k + 1), self.w.at(k + 2)) == ("from", "now"):
            return k + 3, self.later(kind, low, high)
        return None

    def ahead(self, i: int, sign: int) -> Match | None:
        """ "in two days", "in 2 weeks" (not "in 2 days of rain"): the unit that many units ahead."""
        counts = self.count(i)
        if counts is None:
            return None
        k, low, high = counts
        kind = UNITS.get(self.w.at(k))
        if kind is None or self.w.at(k + 1) in ("of", "at", "on", "in"):
            return None
        return k + 1, self.later(kind, low * sign, high * sign)

    def later(self, kind: str, low: int, high: int) -> Span:
        first, last = self.unit(kind, self.shifted(kind, low)), self.unit(kind, self.shifted(kind, high))
        return Span(first.start, last.end, first.granularity if low == high else "range")

    def month_first(self, i: int, context: bool) -> Match | None:
        """ "March 3, 2025", "March 2025", "March 3" (that month of any year), "March" after a temporal word."""
        month = MONTHS[self.w.at(i)]
        k = i + 1
        day = self.w.number(k)
        if day is not None and 1 <= day <= 31:
            return self.day_of(k + 1, month, day)
        if day is not None and len(self.w.at(k)) == 4:
            return k + 1, self.month(day, month)
        if self.w.at(k) == "of" and len(self.w.at(k + 1)) == 4 and self.w.number(k + 1):
            return k + 2, self.month(int(self.w.at(k + 1)), month)
        if context:
            return k, self.month(self.today.year, month, any_year=True)
        return None

    def day_of(self, k: int, month: int, day: int) -> Match:
        """A day of a month, then maybe its year (at k): that day, or (no year) that month of any year. A day the
        month does not have ("February 30, 2023") still names the month."""
        year = self.w.number(k)
        has_year = year is not None and len(self.w.at(k)) == 4
        try:
            d = date(year if year is not None and has_year else 2000, month, day)  # 2000: 29 February exists
        except ValueError:
            d = None
        if d is not None and has_year:
            return k + 1, self.days(d, d + timedelta(days=1), "day")
        return k + has_year, self.month(self.today.year, month, any_year=True)

    def number_first(self, i: int, n: int, context: bool) -> Match | None:
        """ "3 March 2025", "3rd of March", a year after a temporal word, or a count ("3 days ago")."""
        k = i + 1 + (self.w.at(i + 1) == "of")
        if 1 <= n <= 31 and self.w.at(k) in MONTHS:
            return self.day_of(k + 1, MONTHS[self.w.at(k)], n)
        if context and len(self.w.at(i)) == 4 and 1900 <= n <= 2199 and self.w.at(i + 1) not in UNITS:
            return i + 1, self.days(date(n, 1, 1), date(n + 1, 1, 1), "year")
        return self.ago(i)

    def season_named(self, i: int, context: bool) -> Match | None:
        """ "summer 2024", "fall of 2024", and after a temporal word "the summer" (this year's)."""
        name = self.w.at(i)
        k = i + 1 + (self.w.at(i + 1) == "of")
        year = self.w.number(k)
        if year is not None and len(self.w.at(k)) == 4:
            return k + 1, self.season(year, name)
        if context:
            return i + 1, self.season(self.today.year, name)
        return None

    def season_step(self, name: str, step: int) -> Span:
        """last: the latest that ended before today; next: the first that begins after; this: the one today is
        in, else this year's."""
        spans = [self.season(self.today.year + dy, name) for dy in (-2, -1, 0, 1)]
        today = self.instant(self.today)
        if step < 0:
            return [s for s in spans if s.end <= today][-1]
        if step > 0:
            return next(s for s in spans if s.start > today)
        current = [s for s in spans if s.start <= today < s.end]
        return current[0] if current else spans[2]

    def weekday(self, wd: int, how: str) -> Span:
        """on: today if it is one, else the latest; last: the latest before today; next: the first after;
        this: the one of this ISO week."""
        back = (self.today.weekday() - wd) % 7
        if how == "on":
            d = self.today - timedelta(days=back)
        elif how == "last":
            d = self.today - timedelta(days=back or 7)
        elif how == "next":
            d = self.today + timedelta(days=(wd - self.today.weekday()) % 7 or 7)
        else:
            d = self.today + timedelta(days=wd - self.today.weekday())
        return self.unit("day", d)

    def same_years(self, x: Span, y: Span) -> tuple[Span, Span]:
        """A yearless month of a "between" takes the other end's year (the one before it, or after it)."""
        if x.month is not None and y.month is None:
            year = y.start.astimezone(self.zone).year
            x = self.month(year if x.month <= y.start.astimezone(self.zone).month else year - 1, x.month)
        elif y.month is not None and x.month is None:
            year = x.start.astimezone(self.zone).year
            y = self.month(year if y.month >= x.start.astimezone(self.zone).month else year + 1, y.month)
        elif x.month is not None and y.month is not None:
            year = self.today.year
            x = self.month(year if x.month <= y.month else year - 1, x.month)
            y = self.month(year, y.month)
        return x, y


def add_months(d: date, n: int) -> date:
    """The first of the month n months after d's."""
    months = d.year * 12 + d.month - 1 + n
    return date(months // 12, months % 12 + 1, 1)
