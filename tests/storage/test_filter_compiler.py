"""Unit tests of the filter language: parsing, scope analysis, and parameterised SQL (contract §4)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql

from memserver.domain.dates import parse_datetime
from memserver.domain.filters import (
    Bool,
    Cond,
    FilterError,
    and_all,
    is_entity_scoped,
    parse_filters,
)
from memserver.storage.filters import compile_filter

UID = uuid.UUID("6f1e7c6a-1234-4abc-8def-0123456789ab")


def day(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


# ----------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"user_id": "alice"}, Cond("user_id", "eq", "alice")),
        ({"userId": "alice"}, Cond("user_id", "eq", "alice")),
        ({"sessionId": "r1"}, Cond("run_id", "eq", "r1")),
        ({"user_id": 42}, Cond("user_id", "eq", "42")),
        ({"user_id": "*"}, Cond("user_id", "any", None)),
        ({"user_id": {"eq": "*"}}, Cond("user_id", "any", None)),
        ({"agent_id": {"ne": "old"}}, Cond("agent_id", "ne", "old")),
        ({"agent_id": {"in": ["a", 1]}}, Cond("agent_id", "in", ("a", "1"))),
        (
            {"user_id": "u", "run_id": "r"},
            Bool("AND", (Cond("user_id", "eq", "u"), Cond("run_id", "eq", "r"))),
        ),
        (
            {"OR": [{"user_id": "u"}, {"agent_id": "a"}]},
            Bool("OR", (Cond("user_id", "eq", "u"), Cond("agent_id", "eq", "a"))),
        ),
        (
            {"OR": {"user_id": "u", "agent_id": "a"}},
            Bool("OR", (Cond("user_id", "eq", "u"), Cond("agent_id", "eq", "a"))),
        ),
        ({"NOT": {"user_id": "u"}}, Bool("NOT", (Cond("user_id", "eq", "u"),))),
        ({"categories": {"in": ["a", "b"]}}, Cond("categories", "in", ("a", "b"))),
        ({"categories": {"contains": "fin"}}, Cond("categories", "contains", "fin")),
        ({"metadata": {"k": "v"}}, Cond("metadata", "eq", "v", key="k")),
        ({"metadata": {"k": {"ne": 1}}}, Cond("metadata", "ne", 1, key="k")),
        ({"metadata": {"addr": {"city": "Austin"}}}, Cond("metadata", "eq", {"city": "Austin"}, key="addr")),
        ({"keywords": "Tea"}, Cond("keywords", "icontains", "Tea")),
        ({"keywords": {"contains": "Tea"}}, Cond("keywords", "contains", "Tea")),
        ({"memory_ids": [str(UID)]}, Cond("memory_ids", "in", (UID,))),
        ({"memoryIds": {"in": [str(UID)]}}, Cond("memory_ids", "in", (UID,))),
        ({"created_at": {"gte": "2024-07-01"}}, Cond("created_at", "gte", day("2024-07-01"))),
        # a date-only upper bound covers its whole day
        ({"created_at": {"lte": "2024-07-31"}}, Cond("created_at", "lt", day("2024-08-01"))),
        ({"created_at": {"gt": "2024-07-31"}}, Cond("created_at", "gte", day("2024-08-01"))),
        ({"createdAt": {"lt": "2024-07-31T10:00:00Z"}}, Cond("created_at", "lt", day("2024-07-31T10:00:00"))),
        ({"timestamp": {"gte": "2024-07-01"}}, Cond("created_at", "gte", day("2024-07-01"))),
        (
            {"created_at": "2024-07-01"},
            Bool(
                "AND",
                (Cond("created_at", "gte", day("2024-07-01")), Cond("created_at", "lt", day("2024-07-02"))),
            ),
        ),
    ],
)
def test_parse(filters: dict[str, Any], expected: Any) -> None:
    assert parse_filters(filters) == expected


def test_date_range_gives_both_bounds() -> None:
    node = parse_filters({"user_id": "u", "created_at": {"gte": "2024-07-01", "lte": "2024-07-31"}})
    assert node == Bool(
        "AND",
        (
            Cond("user_id", "eq", "u"),
            Cond("created_at", "gte", day("2024-07-01")),
            Cond("created_at", "lt", day("2024-08-01")),
        ),
    )


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ("user_id=alice", "must be a JSON object"),
        ([{"user_id": "a"}], "must be a JSON object"),
        ({"colour": "red"}, "Top-level key must be a logical operator or an allowed field"),
        ({"and": []}, "Top-level key"),
        ({"AND": [{"user_id": "a"}, {"nope": 1}]}, "Top-level key"),
        ({"AND": "x"}, "AND takes a list"),
        ({"OR": ["x"]}, "OR takes a list"),
        ({"NOT": "x"}, "NOT takes a filter object"),
        ({"NOT": ["x"]}, "NOT takes a filter object"),
        ({"user_id": {"regex": "a"}}, "user_id"),
        ({"user_id": {">=": "a"}}, "Unsupported operator"),
        ({"user_id": {"eq": "a", "nin": ["b"]}}, "Unsupported operator 'nin'"),
        ({"user_id": {"gt": "a"}}, "not supported for user_id"),
        ({"user_id": {"in": "a"}}, "non-empty list"),
        ({"user_id": {"in": []}}, "non-empty list"),
        ({"user_id": ["a"]}, "user_id takes"),
        ({"created_at": {"eq": "2024-01-01"}}, "bare value"),
        ({"created_at": {"contains": "2024"}}, "not supported"),
        ({"created_at": {"gte": "soon"}}, "invalid date"),
        ({"created_at": {"gte": True}}, "invalid date"),
        ({"created_at": {"in": []}}, "non-empty list"),
        ({"created_at": ["2024-01-01"]}, "created_at takes"),
        ({"categories": {"eq": "a"}}, "not supported for categories"),
        ({"categories": {"ne": "a"}}, "not supported for categories"),
        ({"categories": {"in": [1]}}, "list of names"),
        ({"categories": 5}, "categories takes"),
        ({"metadata": "x"}, "metadata takes an object"),
        ({"metadata": {"k": {"in": ["a"]}}}, "not supported for metadata"),
        ({"metadata": {"k": {"gt": 1}}}, "not supported for metadata"),
        ({"metadata": {"k": {"contains": ["a"]}}}, "takes a string"),
        ({"keywords": 5}, "keywords takes"),
        ({"keywords": {"regex": "a"}}, "keywords takes"),
        ({"keywords": {"contains": 5}}, "keywords supports"),
        ({"memory_ids": "not-a-uuid"}, "not a valid UUID"),
        ({"memory_ids": {"k": 1}}, "memory_ids takes a list"),
    ],
)
def test_parse_errors(filters: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_filters(filters)


def test_parse_datetime() -> None:
    assert parse_datetime("2024-07-01") == day("2024-07-01")
    assert parse_datetime("2024-07-01", end_of_day=True) == day("2024-07-02")
    assert parse_datetime("2024-07-01T10:00:00") == day("2024-07-01T10:00:00")  # naive = UTC
    assert parse_datetime("2024-07-01T10:00:00Z") == day("2024-07-01T10:00:00")
    assert parse_datetime("2024-07-01T12:00:00+02:00") == day("2024-07-01T10:00:00")
    assert parse_datetime(1_700_000_000) == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert parse_datetime("9999-12-31", end_of_day=True) == datetime.max.replace(tzinfo=UTC)
    for bad in (
        True,
        None,
        "2024-13-01",
        "yesterday",
        [2024],
        1e20,
        float("nan"),
        "9999-12-31T23:00:00-05:00",
    ):
        with pytest.raises(ValueError, match="invalid date"):
            parse_datetime(bad)
        with pytest.raises(FilterError, match="invalid date"):  # inside a filter: a filter error (a 400)
            parse_filters({"user_id": "u", "created_at": {"gte": bad}})


# ----------------------------------------------------------------------------------------------
# scope analysis
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filters", "scoped"),
    [
        ({"user_id": "u"}, True),
        ({"agent_id": {"in": ["a"]}}, True),
        ({"run_id": "*"}, True),
        ({"app_id": "p", "metadata": {"k": "v"}}, True),
        ({"AND": [{"metadata": {"k": "v"}}, {"user_id": "u"}]}, True),
        ({"OR": [{"user_id": "u"}, {"agent_id": "a"}]}, True),
        ({"AND": [{"app_id": "p"}, {"OR": [{"user_id": "*"}, {"agent_id": "*"}]}]}, True),
        ({"user_id": {"in": ["a"], "ne": "b"}}, True),
        ({"user_id": {"ne": "u"}}, False),
        ({"NOT": {"user_id": "u"}}, False),
        ({"user_id": None}, False),
        ({"metadata": {"k": "v"}}, False),
        ({"categories": {"in": ["a"]}}, False),
        ({"created_at": {"gte": "2024-01-01"}}, False),
        ({"OR": [{"user_id": "u"}, {"metadata": {"k": "v"}}]}, False),
        ({"AND": []}, False),
        ({"OR": []}, False),
    ],
)
def test_is_entity_scoped(filters: dict[str, Any], scoped: bool) -> None:
    assert is_entity_scoped(parse_filters(filters)) is scoped


def test_and_all() -> None:
    a, b = Cond("user_id", "eq", "a"), Cond("agent_id", "eq", "b")
    assert and_all() is None
    assert and_all(None, None) is None
    assert and_all(a, None) == a
    assert and_all(a, None, b) == Bool("AND", (a, b))


# ----------------------------------------------------------------------------------------------
# compilation: every user value is a bound parameter
# ----------------------------------------------------------------------------------------------
EVIL = "x'); DROP TABLE memories; --"
EVIL_KEY = "k') OR ('1'='1"


def compiled(filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    c = compile_filter(parse_filters(filters)).compile(
        dialect=postgresql.dialect(), compile_kwargs={"render_postcompile": True}
    )
    return str(c), c.params


@pytest.mark.parametrize(
    "filters",
    [
        {"user_id": EVIL},
        {"user_id": {"ne": EVIL}},
        {"user_id": {"in": [EVIL, "other"]}},
        {"OR": [{"agent_id": EVIL}, {"NOT": {"app_id": EVIL}}]},
        {"user_id": "u", "categories": {"in": [EVIL]}},
        {"user_id": "u", "categories": {"contains": EVIL}},
        {"user_id": "u", "metadata": {EVIL_KEY: EVIL}},
        {"user_id": "u", "metadata": {EVIL_KEY: {"ne": EVIL}}},
        {"user_id": "u", "metadata": {EVIL_KEY: {"contains": EVIL}}},
        {"user_id": "u", "metadata": {EVIL_KEY: {"icontains": EVIL}}},
        {"user_id": "u", "keywords": {"contains": EVIL}},
        {"user_id": "u", "keywords": {"icontains": EVIL}},
    ],
)
def test_user_values_are_bound_parameters(filters: dict[str, Any]) -> None:
    sql, params = compiled(filters)
    for needle in ("DROP TABLE", "'1'='1", "x')"):
        assert needle not in sql
    flat = repr(params)
    assert "DROP TABLE" in flat  # the value travels as a parameter


def test_dates_and_ids_are_bound_parameters() -> None:
    sql, params = compiled({"user_id": "u", "created_at": {"gte": "2024-07-01"}, "memory_ids": [str(UID)]})
    assert "2024" not in sql
    assert str(UID) not in sql
    assert day("2024-07-01") in params.values()
    assert UID in params.values()


def test_like_wildcards_are_escaped() -> None:
    _, params = compiled({"user_id": "u", "keywords": {"contains": "50%_off\\"}})
    assert "%50\\%\\_off\\\\%" in params.values()


def test_expiration_date_compares_calendar_days_in_utc() -> None:
    _, params = compiled({"user_id": "u", "expiration_date": {"lt": "2024-07-01T23:00:00-05:00"}})
    assert date(2024, 7, 2) in params.values()
