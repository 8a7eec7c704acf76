"""LLM-written documents: exports (`POST /v1/exports/`, `POST /v1/exports/get/`) and `POST /v1/summary/`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from memserver.api.deps import OwnerDep, ReaderDep, RuntimeDep, error_shape
from memserver.api.documents.responses import ExportAccepted, ExportDocument, Summary
from memserver.api.kit.body import json_object
from memserver.api.kit.wire import JSONResponse, wire
from memserver.services import documents

router = APIRouter(tags=["exports and summaries"])


EXPORT_ACCEPTED = "Memory export request received. The export will be ready in a few seconds."


@router.post(
    "/v1/exports",
    status_code=201,
    summary="Export memories shaped by a JSON schema (an LLM job)",
    response_model=ExportAccepted,
)
@error_shape("message")
async def create_export(request: Request, runtime: RuntimeDep, principal: OwnerDep) -> JSONResponse:
    body = await json_object(request)
    export_id = await documents.create_export(
        runtime.db,
        runtime.providers,
        runtime.queue,
        principal,
        schema=body.get("schema"),
        filters=body.get("filters"),
        instructions=body.get("export_instructions"),
        top_level=body,
        max_open=runtime.settings.worker.max_pending_exports_per_project,
    )
    return JSONResponse({"message": EXPORT_ACCEPTED, "id": str(export_id)}, status_code=201)


@router.post(
    "/v1/exports/get",
    summary="The export's document, by id or by filters (the newest match)",
    response_model=ExportDocument,
)
@error_shape("error")
async def get_export(request: Request, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    body = await json_object(request)
    document = await documents.get_export(
        runtime.db, principal, body.get("memory_export_id") or body.get("id"), body.get("filters"), body
    )
    return wire(document)


@router.post(
    "/v1/summary",
    summary="An LLM summary of the memories matching the filters (none: the project)",
    response_model=list[Summary],
)
@error_shape("error")
async def summary(request: Request, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    body = await json_object(request)
    summary = await documents.summarize(
        runtime.db, runtime.providers, principal, body.get("filters"), body, runtime.summary_slots, meter=runtime.usage
    )
    return wire([summary])
