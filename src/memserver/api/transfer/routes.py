"""Backup and restore of a whole project as JSONL (memserver extensions; see `services.transfer`).

GET  /v1/memserver/export/  -> the project as JSONL (application/x-ndjson), embeddings, history and events included
POST /v1/memserver/import/  <- such a file, or a Mem0 Platform `get_all` dump, into an empty project
Both act on the key's project, or on the project named by `?project_id=`; both need an OWNER. The export is
sent with its Content-Length; the import has its own body limit (MEMSERVER_LIMITS__MAX_IMPORT_BYTES), is
spooled to disk as it arrives, and with `Accept: application/x-ndjson` answers its progress line by line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from memserver.api.deps import OwnerDep, RuntimeDep, error_shape, streams_body
from memserver.api.kit.wire import wire
from memserver.api.transfer.responses import Imported, failure_line, line
from memserver.domain.principal import Principal
from memserver.services import transfer, uploads
from memserver.services.runtime import Runtime

router = APIRouter(tags=["backup and restore"])
NDJSON = "application/x-ndjson"


@router.get(
    "/v1/memserver/export",
    summary="Export the project as JSONL (memserver extension)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {NDJSON: {"schema": {"type": "string"}}},
            "description": "One JSON object per line; Content-Length is the file's size",
        }
    },
)
@error_shape("error")
async def export_project(runtime: RuntimeDep, principal: OwnerDep) -> StreamingResponse:
    spooled, size = await transfer.export_file(
        runtime.db, principal, runtime.providers.embedder.dim
    )  # errors: before 200
    name = f"memserver-{principal.project_name}.jsonl".replace('"', "")
    return StreamingResponse(
        transfer.read_chunks(spooled),
        media_type=NDJSON,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(size)},
    )


@router.post(
    "/v1/memserver/import",
    summary="Import a JSONL export or a Mem0 get_all dump (memserver extension)",
    response_model=Imported,
    responses={
        200: {
            "content": {
                NDJSON: {
                    "schema": {"type": "string"},
                    "example": '{"phase":"embedding","done":256,"total":1000}\n{"phase":"writing"}\n'
                    '{"message":"Import completed","imported":{"memory":1000}}\n',
                }
            },
            "description": "With Accept: application/x-ndjson, progress lines, then the outcome",
        },
        413: {"description": "Larger than MEMSERVER_LIMITS__MAX_IMPORT_BYTES"},
    },
)
@error_shape("error")
@streams_body  # up to MEMSERVER_LIMITS__MAX_IMPORT_BYTES: spooled to disk, never read whole (`?project_id=`)
async def import_project(request: Request, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    """Into an empty project. Every check (the file, its header and settings, ids, values, the project being
    empty) answers its 4xx before anything else; then the memories are embedded and everything is written in one
    transaction. With `Accept: application/x-ndjson` the 200 streams `{"phase": "embedding", "done", "total"}`,
    `{"phase": "writing"}`, then `{"message", "imported"}`, or `{"error", "status"}` (nothing written)."""
    spooled = await uploads.spool(request.stream())
    try:
        objs = await asyncio.to_thread(uploads.parse_file, spooled)
    finally:
        spooled.close()
    prepared = await transfer.prepare_import(runtime.db, principal, objs)
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(_progress(runtime, principal, prepared), media_type=NDJSON)
    counts = await transfer.run_import(runtime.db, runtime.providers, principal, prepared)
    return wire({"message": "Import completed", "imported": counts})


async def _progress(runtime: Runtime, principal: Principal, prepared: transfer.PreparedImport) -> AsyncIterator[bytes]:
    """The import's progress lines as it runs, then its outcome. A client that goes away stops it (the one
    transaction rolls back: nothing is written)."""
    lines: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    work = asyncio.ensure_future(
        transfer.run_import(runtime.db, runtime.providers, principal, prepared, progress=lines.put_nowait)
    )
    work.add_done_callback(lambda _: lines.put_nowait(None))
    try:
        while (item := await lines.get()) is not None:
            yield line(item)
        try:
            yield line({"message": "Import completed", "imported": work.result()})
        except Exception as exc:
            yield failure_line(exc)
    finally:
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
