"""The one reader of a JSON object body, for the routes whose body has no model of its own."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from memserver.api.kit.schema import reject_nul
from memserver.errors import BadRequest


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is `{}`. NUL characters are refused here, as the models
    refuse them (Postgres text cannot hold them)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
        reject_nul(data)
    except ValueError as exc:
        raise BadRequest(f"the body must be a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data
