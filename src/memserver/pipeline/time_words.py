"""The words of English time expressions, and a text cut into them (pure; see `pipeline.time_expressions`).

The text is lowercased and cut into words and numbers (`[a-z]+|\\d+`); an ISO date (2025-03-03, 2025/03/03) or
month (2025-03) is one token, "3rd" the number 3. `TRIGGERS` are the words without which no expression can
be read; `CONTEXT` the words after which a month, weekday, season or year is a date ("in May", not "May I").
"""

from __future__ import annotations

import re
from datetime import timedelta

RECENT = timedelta(days=30)  # "recently", "currently": the last 30 days

MONTHS = {
    name: i + 1
    for i, name in enumerate(
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
MONTHS.update({name[:3]: i for name, i in list(MONTHS.items())})
MONTHS["sept"] = 9
WEEKDAYS = {
    name: i for i, name in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
}
SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}  # the month each begins
UNITS = {
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "year": "year",
    "years": "year",
}
NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
VAGUE = {"couple": (2, 2), "few": (2, 4), "several": (3, 7)}  # "a few days ago": the hull of 2..4 days ago
# Words after which a month, weekday, season or year is a date.
CONTEXT = frozenset(
    [
        "in",
        "during",
        "on",
        "since",
        "until",
        "till",
        "by",
        "before",
        "after",
        "early",
        "late",
        "mid",
        "of",
        "between",
        "from",
        "around",
        "throughout",
        "last",
        "this",
        "next",
        "previous",
    ]
)
RELATIVE_DAYS = {"today": 0, "tonight": 0, "yesterday": -1, "tomorrow": 1}
CURRENT = {"recently": False, "lately": False, "currently": True, "nowadays": True}
# "since", "between" and "as of" need a date after them, which has a trigger of its own.
TRIGGERS = frozenset([*MONTHS, *WEEKDAYS, *SEASONS, *UNITS, "weekend", *RELATIVE_DAYS, "ago", *CURRENT, "now"])
# Words a pattern may begin with (a trigger, or a word that modifies the trigger after it).
STARTERS = TRIGGERS | CONTEXT | {"as", "the", "these", "right", "past", "coming", *NUMBER_WORDS, *VAGUE}
DIGIT = re.compile(r"\d")
WORD = re.compile(r"[a-z]+")
_TOKEN = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?!\d)|(\d{4})-(\d{2})(?![\d-])|[a-z]+|\d+")
_ORDINAL = frozenset({"st", "nd", "rd", "th"})


class Words:
    """The text's words and numbers with their character spans; ISO dates are one token ('#d' or '#m')."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words: list[str] = []
        self.spans: list[tuple[int, int]] = []
        self.iso: dict[int, tuple[int, ...]] = {}
        for m in _TOKEN.finditer(text.lower()):
            w = m.group(0)
            if m.group(1):
                self.iso[len(self.words)] = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
                w = "#d"
            elif m.group(4):
                self.iso[len(self.words)] = (int(m.group(4)), int(m.group(5)))
                w = "#m"
            elif w in _ORDINAL and self.words and self.words[-1].isdigit() and self.spans[-1][1] == m.start():
                continue  # "3rd": the number alone
            self.words.append(w)
            self.spans.append(m.span())

    def __len__(self) -> int:
        return len(self.words)

    def at(self, i: int) -> str:
        return self.words[i] if 0 <= i < len(self.words) else ""

    def number(self, i: int) -> int | None:
        w = self.at(i)
        return int(w) if w.isdigit() and len(w) <= 6 else None

    def label(self, i: int, j: int) -> str:
        return self.text[self.spans[i][0] : self.spans[j - 1][1]]
