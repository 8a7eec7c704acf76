"""Values from query parameters and fields that more than one route reads: metadata, memory ids, dates."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import orjson

from memserver.domain import limits, literals
from memserver.domain.dates import parse_as_of, parse_timestamp, to_date
from memserver.errors import BadRequest


def decode_object_param(raw: str | None, name: str) -> dict[str, Any] | None:
    """An object-valued query parameter (`filters`, `metadata`): JSON (curl, `json.dumps`), or the Python dict
    repr the Python clients send through httpx (`filters={'user_id': 'alice'}`), read by a bounded literal
    reader (never `eval`). Absent or blank = None; anything else that is not an object is a 400."""
    if raw is None or not raw.strip():
        return None
    if len(raw) > literals.MAX_CHARS:
        raise BadRequest(f"{name} is longer than {literals.MAX_CHARS} characters")
    if raw.strip() == "[object Object]":  # JavaScript's String({...}): URLSearchParams cannot carry an object
        raise BadRequest(
            f"{name} arrived as '[object Object]': the JavaScript client cannot put an object in a query string; "
            + (
                "pass the ids: deleteAll({ userId: 'alice' })"
                if name == "filters"
                else f"send {name} as JSON text (JSON.stringify)"
            )
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            value = literals.parse(raw)
        except literals.LiteralError as exc:
            raise BadRequest(f"{name} must be a JSON object or a Python dict literal: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object")
    try:
        limits.check_json(value)  # JSON escapes (\u0000, \ud800) get past the edge's NUL check
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None
    return value


def metadata_param(raw: str | None) -> dict[str, Any] | None:
    """A `metadata` query parameter (absent or empty = no constraint)."""
    return decode_object_param(raw, "metadata") or None


def memory_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequest("memory_id should be a valid UUID") from None


def as_date(value: date | datetime | None) -> date | None:
    return None if value is None else to_date(value)


def as_timestamp(value: int | float | str | None) -> datetime | None:
    """Unix seconds (int/float, or a numeric string) or an ISO-8601 string."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


AS_OF_DESCRIPTION = (
    "memserver extension: the memories as they stood at this moment (recorded time; an add's `timestamp` "
    "backdates it): unix seconds (milliseconds from 1e11), YYYY-MM-DD (the end of that day, UTC) or an "
    "ISO-8601 datetime (naive = UTC). Absent, or not in the past: today's memories."
)
# The JSON forms `as_of` takes (the field itself is parsed by `as_of_param`, for one error text on every route).
AS_OF_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]}


def as_of_param(value: Any) -> datetime | None:
    """`as_of` from a body or a query parameter; a 400 in the route's shape when it is not an instant."""
    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
