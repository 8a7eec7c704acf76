"""Query understanding: the names and the dates a search query talks about."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memserver.pipeline.query import REPORT_LAG, hints, names, periods


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("What did Melanie paint?", ["melanie"]),
        ("When did Caroline's mom visit Jon?", ["caroline", "jon"]),
        ("Where did John go in July 2023?", ["john"]),
        ("What do you know about me?", []),
        ("Is the User allergic to anything?", []),
        ("What did Mary-Jane tell Ana on Monday?", ["mary-jane", "ana"]),
    ],
)
def test_names(query: str, expected: list[str]) -> None:
    assert names(query) == expected


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "expected", "months"),
    [
        ("What happened on October 13, 2023?", [(day(2023, 10, 13), day(2023, 10, 14))], []),
        ("What did Gina find on 1 February, 2023?", [(day(2023, 2, 1), day(2023, 2, 2))], []),
        ("What class did Maria start in December 2023?", [(day(2023, 12, 1), day(2024, 1, 1))], []),
        ("How often did she go to the beach in 2023?", [(day(2023, 1, 1), day(2024, 1, 1))], []),
        ("Notes from 2024-03-05 please", [(day(2024, 3, 5), day(2024, 3, 6))], []),
        ("When did Melanie go camping in June?", [], [6]),
        ("What did I do?", [], []),
        ("What happened on February 30, 2023?", [], [2]),  # not a day: the month still counts
        ("I may go to the beach", [], []),  # "may" is not May
    ],
)
def test_periods(query: str, expected: list[tuple[datetime, datetime]], months: list[int]) -> None:
    found, found_months = periods(query)
    assert found == [(a, b + REPORT_LAG) for a, b in expected]
    assert found_months == months


def test_hints_combine_both() -> None:
    h = hints("What did Melanie paint on October 13, 2023?")
    assert h.names == ["melanie"]
    assert h.periods[0][0] == day(2023, 10, 13)
