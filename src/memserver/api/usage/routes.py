"""A project's usage per day (memserver extension): `GET /v1/memserver/usage/?from=&to=&tz=`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from memserver.api.deps import ReaderDep, RuntimeDep, error_shape
from memserver.api.kit.wire import wire
from memserver.api.usage.responses import Usage
from memserver.services import usage

router = APIRouter(tags=["usage (memserver extension)"])


@router.get(
    "/v1/memserver/usage",
    summary="The project's usage per day (memserver extension)",
    response_model=Usage,
    responses={400: {"description": "A bad date or time zone, or more than 366 days"}},
)
@error_shape("error")
async def project_usage(
    runtime: RuntimeDep,
    principal: ReaderDep,
    from_: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD; default: 29 days before `to`")] = None,
    to: Annotated[str | None, Query(description="YYYY-MM-DD; default: today in `tz`")] = None,
    tz: Annotated[str | None, Query(description="An IANA time zone (Europe/Lisbon); default UTC")] = None,
) -> Response:
    """Memories added, updated and deleted, searches, LLM calls and tokens, and failures, one value per day
    (every day present), with totals; at most 366 days."""
    return wire(await usage.report(runtime.db, principal, usage.period(from_, to, tz)))
