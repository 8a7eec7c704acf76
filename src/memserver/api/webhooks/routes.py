"""Webhooks (`/api/v1/webhooks/...`): the paths and bodies the Python (0.1, 1.0, 2.x) and TS (3.x) SDKs send.

`GET /api/v1/webhooks/{webhook_id}/deliveries/` is a memserver extension: each delivery with its
status, attempts, last response status and last error; so is `POST /api/v1/webhooks/{webhook_id}/test/`,
one signed test delivery.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from memserver.api.deps import OwnerDep, RuntimeDep, error_shape, segment
from memserver.api.kit.body import json_object
from memserver.api.kit.pagination import Paging, page_query
from memserver.api.kit.wire import JSONResponse, Message, wire
from memserver.api.webhooks.requests import webhook_fields
from memserver.api.webhooks.responses import (
    Deliveries,
    TestQueued,
    Webhook,
    WebhookCreated,
    delivery_out,
    webhook_out,
)
from memserver.services import webhooks

router = APIRouter(tags=["webhooks"])


@router.get("/api/v1/webhooks/projects/{project_id}", summary="List a project's webhooks", response_model=list[Webhook])
@error_shape("error")
async def list_webhooks(project_id: str, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    rows = await webhooks.list_webhooks(runtime.db, principal, segment(project_id))
    return wire([webhook_out(r, principal.project_name) for r in rows])


@router.post(
    "/api/v1/webhooks/projects/{project_id}", summary="Create a webhook", status_code=201, response_model=WebhookCreated
)
@error_shape("error")
async def create_webhook(project_id: str, request: Request, runtime: RuntimeDep, principal: OwnerDep) -> JSONResponse:
    """201 with the webhook and its signing `secret` (shown once; a memserver extension)."""
    f = webhook_fields(await json_object(request), required=True)
    row = await webhooks.create(
        runtime.db,
        runtime.settings.webhooks,
        principal,
        segment(project_id),
        name=f["name"],
        url=f["url"],
        event_types=f["event_types"],
    )
    return JSONResponse({**webhook_out(row, principal.project_name), "secret": row.secret}, status_code=201)


@router.put("/api/v1/webhooks/{webhook_id}", summary="Update a webhook", response_model=Message)
@error_shape("error")
async def update_webhook(webhook_id: str, request: Request, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    body = await json_object(request)
    changes = webhook_fields(body, required=False)
    if isinstance(body.get("is_active"), bool):
        changes["is_active"] = body["is_active"]
    await webhooks.update(runtime.db, runtime.settings.webhooks, principal, segment(webhook_id), changes)
    return wire({"message": "Webhook updated successfully"})


@router.delete("/api/v1/webhooks/{webhook_id}", summary="Delete a webhook", response_model=Message)
@error_shape("error")
async def delete_webhook(webhook_id: str, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    await webhooks.delete(runtime.db, principal, segment(webhook_id))
    return wire({"message": "Webhook deleted successfully"})


@router.get(
    "/api/v1/webhooks/{webhook_id}/deliveries",
    summary="A webhook's deliveries (memserver extension)",
    response_model=Deliveries,
)
@error_shape("error")
async def list_deliveries(
    webhook_id: str,
    runtime: RuntimeDep,
    principal: OwnerDep,
    paging: Annotated[Paging, page_query(default_size=50, max_size=500)],
) -> Response:
    p, size = paging.page, paging.size
    rows, count = await webhooks.deliveries(runtime.db, principal, segment(webhook_id), page=p, page_size=size)
    return wire({"results": [delivery_out(r) for r in rows], "page": p, "page_size": size, "count": count})


@router.post(
    "/api/v1/webhooks/{webhook_id}/test",
    status_code=202,
    summary="Send one signed test delivery (memserver extension)",
    response_model=TestQueued,
    responses={404: {"description": "No such webhook in the project"}, 409: {"description": "The webhook is paused"}},
)
@error_shape("error")
async def test_webhook(webhook_id: str, runtime: RuntimeDep, principal: OwnerDep) -> JSONResponse:
    """A `webhook_test` delivery, signed like every delivery, tried once; it is listed with the webhook's
    deliveries under the returned `delivery_id`."""
    delivery_id = await webhooks.send_test(runtime.db, runtime.queue, principal, segment(webhook_id))
    return JSONResponse({"message": "Test delivery queued", "delivery_id": str(delivery_id)}, status_code=202)
