"""Values from query parameters and fields that more than one route reads: metadata, memory ids, dates."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from memserver.domain import limits
from memserver.domain.dates import parse_timestamp, to_date
from memserver.errors import BadRequest


def metadata_param(raw: str | None) -> dict[str, Any] | None:
    """A `metadata` query parameter: a JSON object (absent or empty = no constraint)."""
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        raise BadRequest("metadata must be a JSON object") from None
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be a JSON object")
    try:
        limits.check_json(meta)  # JSON escapes (\u0000, \ud800) get past the edge's NUL check
    except ValueError as exc:
        raise BadRequest(f"metadata: {exc}") from None
    return meta or None


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
