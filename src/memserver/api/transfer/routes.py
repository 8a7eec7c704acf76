"""Backup and restore of a whole project as JSONL (memserver extensions; see `services.transfer`).

GET  /v1/memserver/export/  -> the project as JSONL (application/x-ndjson), embeddings, history and events included
POST /v1/memserver/import/  <- such a file, or a Mem0 Platform `get_all` dump, into an empty project
Both act on the key's project, or on the project named by `?project_id=`; both need an OWNER.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from memserver.api.deps import OwnerDep, RuntimeDep, error_shape
from memserver.api.kit.wire import wire
from memserver.api.transfer.responses import Imported
from memserver.services import transfer

router = APIRouter(tags=["backup and restore"])


@router.get(
    "/v1/memserver/export",
    summary="Export the project as JSONL (memserver extension)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            "description": "One JSON object per line",
        }
    },
)
@error_shape("error")
async def export_project(runtime: RuntimeDep, principal: OwnerDep) -> StreamingResponse:
    spooled = await transfer.export_file(runtime.db, principal, runtime.providers.embedder.dim)  # errors: before 200
    name = f"memserver-{principal.project_name}.jsonl".replace('"', "")
    return StreamingResponse(
        transfer.read_chunks(spooled),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post(
    "/v1/memserver/import",
    summary="Import a JSONL export or a Mem0 get_all dump (memserver extension)",
    response_model=Imported,
)
@error_shape("error")
async def import_project(request: Request, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    counts = await transfer.import_lines(runtime.db, runtime.providers, principal, await request.body())
    return wire({"message": "Import completed", "imported": counts})
