"""Putting a response on the wire, and the base of the documented response shapes.

Response models document what each feature's `responses.py` builds (contract §2-§3); they are never used to
validate or re-serialise a response. Routes return `wire(body)`: FastAPI passes a returned `Response` through
untouched, so declaring `response_model=` costs nothing per request, and the bytes are the ones FastAPI produced
before the models existed (pydantic's JSON encoder over plain dicts: datetimes as `...Z`, compact separators),
minus its validation pass over the dict.

Two encoders, on purpose: `wire` (pydantic) for every 200 of the Mem0 routes, and `JSONResponse` (orjson,
datetimes as `+00:00`) for error bodies, the 201s and the probes, which have always gone out through it.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from fastapi import Response
from pydantic import BaseModel, TypeAdapter
from starlette.responses import JSONResponse as StarletteJSONResponse

from memserver import jsonio

# The serializer FastAPI used for these routes (a TypeAdapter over an `Any`-typed dict): same bytes.
_WIRE: TypeAdapter[Any] = TypeAdapter(Any)


class WireJSON(Response):
    """A JSON body encoded by pydantic, as FastAPI encodes a route's return value itself."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _WIRE.dump_json(content)


def wire(body: Any, status_code: int = 200) -> WireJSON:
    return WireJSON(body, status_code=status_code)


class JSONResponse(StarletteJSONResponse):
    """A JSON body encoded by orjson."""

    def render(self, content: Any) -> bytes:
        return jsonio.dumps(content)


# -- the shapes' base ---------------------------------------------------------------------------

EventOp = Literal["ADD", "UPDATE", "DELETE", "NOOP"]
JobState = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
T = TypeVar("T")


class Out(BaseModel):
    """A documented response shape (never instantiated on the request path)."""


class Page(Out, Generic[T]):
    """A page: {count, next, previous, results}; next/previous are absolute URLs or null."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


class Message(Out):
    message: str
