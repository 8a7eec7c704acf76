"""Query understanding for search (no I/O): the names and the dates a query talks about.

Both are generic signals: a query naming a person should prefer memories that mention that
person, and a query naming a date ("in July 2023", "on 13 October 2023", "in 2022") should
prefer memories recorded in that period (or a few days after it, when people tend to talk
about what happened).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ]
    )
}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_MON = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"  # noqa: E501
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
    # [start, end) in UTC; memories created inside get the temporal signal
    periods: list[tuple[datetime, datetime]] = field(default_factory=list)
    months: list[int] = field(default_factory=list)  # a month named without a year


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
        if word in _NOT_NAMES or word in _MONTHS or word in _DAYS or len(word) < 2:
            continue
        if word not in out:
            out.append(word)
            if len(out) == MAX_NAMES:
                break
    return out


def _day(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def periods(query: str) -> tuple[list[tuple[datetime, datetime]], list[int]]:
    """Absolute dates, months and years named in the query."""
    s = query.lower()
    spans: list[tuple[int, int]] = []
    found: list[tuple[datetime, datetime]] = []
    months: list[int] = []
    patterns = [
        ("dmy", rf"\b{_MON}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b"),
        ("dmy2", rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON},?\s+(\d{{4}})\b"),
        ("my", rf"\b{_MON},?\s+(\d{{4}})\b"),
        ("iso", r"\b(\d{4})-(\d{2})-(\d{2})\b"),
        ("m", rf"\b(?:in|during|on|since|before|after|by|of|early|late|mid)\s+{_MON}\b"),
        ("y", r"\b(?:in|during|since|before|after|of)\s+((?:19|20)\d\d)\b"),
    ]
    for kind, pattern in patterns:
        for m in re.finditer(pattern, s):
            if len(spans) >= MAX_PERIODS:  # bounds the overlap check below: linear in the query
                break
            if any(m.start() < b and m.end() > a for a, b in spans):
                continue
            try:
                if kind == "dmy":
                    start = _day(date(int(m[3]), _MONTHS[m[1]], int(m[2])))
                    end = start + timedelta(days=1)
                elif kind == "dmy2":
                    start = _day(date(int(m[3]), _MONTHS[m[2]], int(m[1])))
                    end = start + timedelta(days=1)
                elif kind == "iso":
                    start = _day(date(int(m[1]), int(m[2]), int(m[3])))
                    end = start + timedelta(days=1)
                elif kind == "my":
                    y, mo = int(m[2]), _MONTHS[m[1]]
                    start = _day(date(y, mo, 1))
                    end = _day(date(y + (mo == 12), mo % 12 + 1, 1))
                elif kind == "y":
                    start, end = _day(date(int(m[1]), 1, 1)), _day(date(int(m[1]) + 1, 1, 1))
                else:
                    spans.append((m.start(), m.end()))
                    months.append(_MONTHS[m[1]])
                    continue
            except ValueError:  # 31 February and friends
                continue
            spans.append((m.start(), m.end()))
            found.append((start, end + REPORT_LAG))
    return found, sorted(set(months))


def hints(query: str) -> QueryHints:
    found, months = periods(query)
    return QueryHints(names=names(query), periods=found, months=months)
