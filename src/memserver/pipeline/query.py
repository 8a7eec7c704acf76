"""Query understanding for search (no I/O): the names and the times a query talks about.

Both are generic signals: a query naming a person should prefer memories that mention that
person, and a query naming a time ("in July 2023", "last week", "three days ago") should prefer
memories about that time (their event dates), or recorded then (or a few days after it, when
people tend to talk about what happened). Times are read by `pipeline.time_expressions`,
relative to the search's reference instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from memserver.pipeline import time_expressions
from memserver.pipeline.time_expressions import TimeRange

_MONTHS = time_expressions.MONTHS
_DAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_NOT_NAMES = {
    "what",
    "when",
    "where",
    "who",
    "whom",
    "whose",
    "why",
    "which",
    "how",
    "did",
    "does",
    "do",
    "is",
    "was",
    "were",
    "are",
    "am",
    "be",
    "been",
    "would",
    "could",
    "should",
    "will",
    "can",
    "has",
    "have",
    "had",
    "in",
    "on",
    "at",
    "the",
    "a",
    "an",
    "and",
    "or",
    "but",
    "if",
    "of",
    "for",
    "to",
    "from",
    "with",
    "by",
    "about",
    "i",
    "my",
    "me",
    "we",
    "our",
    "you",
    "your",
    "he",
    "she",
    "his",
    "her",
    "they",
    "their",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "there",
    "here",
    "tell",
    "list",
    "name",
    "give",
    "any",
    "all",
    "some",
    "user",
    "assistant",
    "yes",
    "no",
    "not",
    "also",
    "then",
    "so",
    "as",
    "after",
    "before",
    "during",
    "since",
    "last",
    "next",
    "first",
    "yesterday",
    "today",
    "tomorrow",
}
# An event named for a period is usually talked about during it or within about a week after.
REPORT_LAG = timedelta(days=7)


@dataclass
class QueryHints:
    names: list[str] = field(default_factory=list)
    # [start, end) in UTC; memories recorded inside get the temporal signal (the ranges, plus REPORT_LAG)
    periods: list[tuple[datetime, datetime]] = field(default_factory=list)
    months: list[int] = field(default_factory=list)  # a month named without a year
    ranges: list[TimeRange] = field(default_factory=list)  # the times named, as named: event dates overlap them


# A capitalised word and what follows it up to the end of the run of word characters and hyphens.
# No other quantifier follows the greedy one, so the match never backtracks (linear in the query).
_CAPITALISED = re.compile(r"\b[A-Z][\w\-]*")
_LOWER = re.compile(r"[a-z]")
MAX_NAMES = 4  # each name is one more full-text test per memory in scope; 2 in 1000 LoCoMo questions name more
MAX_PERIODS = 16  # dates/months/years read from one query; the rest are ignored


def names(query: str) -> list[str]:
    """Capitalised words that look like names ("Caroline", "Caroline's"), lower-cased, deduplicated."""
    out: list[str] = []
    for m in _CAPITALISED.finditer(query):
        token = m.group(0).rstrip("-")
        if not _LOWER.search(token, 1):  # a name has a lower-case letter after its capital (not "NASA")
            continue
        word = token.lower()
        if word in _NOT_NAMES or word in _DAYS or len(word) < 2:
            continue
        if word in _MONTHS and not _month_is_name(query, m.start(), m.end()):
            continue
        if word not in out:
            out.append(word)
            if len(out) == MAX_NAMES:
                break
    return out


_PREVIOUS = re.compile(r"([A-Za-z]+|\d+)?[^A-Za-z\d]*$")
_FOLLOWING = re.compile(r"[^A-Za-z\d]*([A-Za-z]+|\d+)?")


def _month_is_name(query: str, start: int, end: int) -> bool:
    """A capitalised month word is a name ("Where did May go?") unless it opens the query or a sentence ("May I
    ask") or is a date ("in May", "May 3", "May 2023"). Looks at most 40 characters back: linear in the query."""
    before = query[max(0, start - 40) : start]
    previous = _PREVIOUS.search(before)
    prev_word = previous.group(1) if previous else None
    if prev_word is None or before.rstrip().endswith((".", "?", "!")):
        return False
    following = _FOLLOWING.match(query, end)
    next_word = following.group(1) if following else None
    return not time_expressions.month_is_date(prev_word.lower(), next_word.lower() if next_word else None)


def periods(query: str, ref: datetime | None = None) -> tuple[list[tuple[datetime, datetime]], list[int]]:
    """The periods recorded dates are compared with, and the months named without a year (see `hints`)."""
    h = hints(query, ref)
    return h.periods, h.months


def hints(query: str, ref: datetime | None = None) -> QueryHints:
    """Names and times of a query; times relative to `ref` (aware; its zone gives the days), by default now.

    A memory recorded within a named period, or up to REPORT_LAG after it, gets the recorded-date signal;
    open ranges (since, recently, currently) and future ones get no lag."""
    ref = ref or datetime.now(UTC)
    ranges = time_expressions.find(query, ref)
    found: list[tuple[datetime, datetime]] = []
    for r in ranges:
        if r.month is None:
            no_lag = r.open_end or r.start > ref
            found.append((r.start, r.end if no_lag else r.end + REPORT_LAG))
    months = sorted({r.month for r in ranges if r.month is not None})
    return QueryHints(names=names(query), periods=found, months=months, ranges=ranges)
