"""Moving a whole project as JSONL: `memserver export` / `memserver import` and their HTTP endpoints.

The file is one JSON object per line. The first line is a header
(`{"record": "header", "format": "memserver-export", "version": 1, "project": {...}, "embedding_dim": N}`),
then `memory` (with its embedding), `history`, `event`, `entity`, `feedback` and `read` lines
(`"record"` says which), each a row of its table. Importing it into an empty project reproduces the
memories, their embeddings, history, events and settings; ids are kept unless one of them already
exists on this server (then every id is renewed, consistently). An import is data, never work: its
events arrive finished (one still open in the export is FAILED "imported while PENDING", so nothing
runs it) and webhook deliveries are left out (the webhooks are not exported; a delivery could only be
re-sent, signed with this project's secret); its settings pass the checks PATCH and the profile
settings apply. A Mem0 Platform `get_all` dump (a JSON array, `{"results": [...]}`, or one memory
object per line) is imported too: each memory is embedded and gets an ADD history entry.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from memserver import jsonio
from memserver.domain.principal import Principal
from memserver.errors import BadRequest, Conflict
from memserver.providers.registry import Providers
from memserver.services import dream, permissions, profiles, project_settings, transfer_rows
from memserver.storage.db import Database
from memserver.storage.repositories.dream import DreamRepository
from memserver.storage.repositories.tenants import TenantRepository
from memserver.storage.repositories.transfer import KINDS, TransferRepository

# this server's own


def _default(value: Any) -> Any:
    """asyncpg's own UUID type and pgvector values, which orjson does not know."""
    if hasattr(value, "to_list"):
        return value.to_list()
    return str(value)


def _line(obj: dict[str, Any]) -> bytes:
    return jsonio.dumps(obj, default=_default) + b"\n"


async def export_lines(db: Database, principal: Principal, embedding_dim: int) -> AsyncIterator[bytes]:
    """The project as JSONL lines, read in one snapshot."""
    permissions.require_owner(principal, "exporting the project")
    async with db.connect() as conn:
        project = await TenantRepository(conn).get_project(principal.project_id)
    assert project is not None
    header = {
        "record": "header",
        "format": transfer_rows.FORMAT,
        "version": transfer_rows.VERSION,
        "exported_at": datetime.now(UTC),
        "embedding_dim": embedding_dim,
        "project": {
            "name": project.name,
            "description": project.description,
            "custom_instructions": project.custom_instructions,
            "custom_categories": project.custom_categories,
            "settings": project.settings or {},  # every other setting, profile settings included
        },
    }
    yield _line(header)
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")  # one consistent snapshot
        async with conn.begin():
            repo = TransferRepository(conn)
            for kind in KINDS:
                async for row in repo.rows(kind, principal.project_id):
                    yield _line({"record": kind, **row})


SPOOL_CHUNK = 1 << 20  # bytes per write to, and per read from, an export's temporary file
EMBED_BATCH = 256  # memories embedded per request while importing (and per progress line)


async def export_file(db: Database, principal: Principal, embedding_dim: int) -> tuple[IO[bytes], int]:
    """The project as JSONL in an anonymous temporary file (no name: nothing stays behind), rewound, and its size
    (the response's Content-Length, so a client can show how far a download is).

    The database connection is held only while the rows are copied to the file (local disk speed), never while
    a client reads the export: twenty clients reading slowly would otherwise hold twenty pooled connections
    and starve every tenant's requests (tests/api/test_export_slow_readers.py)."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it (read_chunks)
    try:
        pending = bytearray()
        async for line in export_lines(db, principal, embedding_dim):
            pending += line
            if len(pending) >= SPOOL_CHUNK:
                await asyncio.to_thread(out.write, bytes(pending))
                pending.clear()
        await asyncio.to_thread(out.write, bytes(pending))
        size = out.tell()
        await asyncio.to_thread(out.seek, 0)
    except BaseException:
        out.close()
        raise
    return out, size


async def read_chunks(spooled: IO[bytes]) -> AsyncIterator[bytes]:
    """A spooled export, chunk by chunk off the event loop; closes (and so deletes) the file at the end."""
    try:
        while chunk := await asyncio.to_thread(spooled.read, SPOOL_CHUNK):
            yield chunk
    finally:
        spooled.close()


async def import_lines(db: Database, providers: Providers, principal: Principal, content: bytes) -> dict[str, int]:
    """Import a memserver export or a Mem0 `get_all` dump into the (empty) project; returns counts per kind."""
    prepared = await prepare_import(db, principal, transfer_rows.parse(content))
    return await run_import(db, providers, principal, prepared)


@dataclass
class PreparedImport:
    """An import whose checks passed: its rows per kind and the settings it restores (None: none)."""

    rows: dict[str, list[dict[str, Any]]]
    restored: tuple[dict[str, Any], dict[str, Any]] | None

    def counts(self) -> dict[str, int]:
        return {kind: len(self.rows[kind]) for kind in KINDS}


Progress = Callable[[dict[str, Any]], object]


async def prepare_import(db: Database, principal: Principal, objs: list[dict[str, Any]]) -> PreparedImport:
    """Every check an import passes before anything is embedded or written (each a 400 or 409): the header,
    the settings it restores, the ids, each value's type, and that the project is empty."""
    permissions.require_owner(principal, "importing into the project")
    header = objs[0] if objs and objs[0].get("record") == "header" else None
    restored = None
    if header is not None:
        lines = transfer_rows.records(header, objs[1:])
        if header.get("project") is not None:
            restored = _settings_to_restore(header["project"])  # checked before anything is written
    else:
        lines = {k: [] for k in KINDS} | transfer_rows.from_mem0(objs)
    own = transfer_rows.own_ids(lines)
    async with db.connect() as conn:
        repo = TransferRepository(conn)
        for kind in ("memory", "history", "event"):
            if await repo.count(kind, principal.project_id):
                raise Conflict(f"project {principal.project_name!r} is not empty: import into an empty project")
        renew = [kind for kind in transfer_rows.OWN_IDS if await repo.taken_ids(kind, own[kind])]
    # Some ids exist elsewhere on this server (the same export imported twice, a copy of a project): every id
    # is renewed, consistently, so references between the records still hold.
    ids = {old: uuid.uuid4() for kind in transfer_rows.OWN_IDS for old in own[kind]} if renew else {}
    return PreparedImport({kind: [transfer_rows.row(kind, o, ids) for o in lines[kind]] for kind in KINDS}, restored)


async def run_import(
    db: Database, providers: Providers, principal: Principal, prepared: PreparedImport, progress: Progress | None = None
) -> dict[str, int]:
    """Embed what has no embedding of this server's size, then write everything in one transaction (all or
    nothing); `progress` hears `{"phase": "embedding", "done", "total"}` and `{"phase": "writing"}`."""
    rows = prepared.rows
    await _embed_missing(providers, rows["memory"], progress)
    _past_vectors(providers.embedder.dim, rows["history"])
    if progress is not None:
        progress({"phase": "writing"})
    async with db.transaction() as conn:
        repo = TransferRepository(conn)
        for kind in transfer_rows.ORDER:
            await repo.insert(kind, principal.project_id, rows[kind])
        if prepared.restored is not None:
            await TenantRepository(conn).update_project(principal.project_id, *prepared.restored)
            if dream.enabled(prepared.restored[1].get(dream.SECTION) or {}):  # imported memories are history
                await DreamRepository(conn).set_boundary_now(principal.project_id)
    return prepared.counts()


async def _embed_missing(providers: Providers, memories: list[dict[str, Any]], progress: Progress | None) -> None:
    """Embed memories without an embedding, or with one of another size (another embedder exported them)."""
    dim = providers.embedder.dim
    todo = [m for m in memories if not isinstance(m.get("embedding"), list) or len(m["embedding"]) != dim]
    if progress is not None:
        progress({"phase": "embedding", "done": 0, "total": len(todo)})
    for start in range(0, len(todo), EMBED_BATCH):
        chunk = todo[start : start + EMBED_BATCH]
        for m, vector in zip(chunk, await providers.embedder.embed([m["memory"] for m in chunk]), strict=True):
            m["embedding"] = vector
        if progress is not None:
            progress({"phase": "embedding", "done": start + len(chunk), "total": len(todo)})
    for m in memories:
        m["embedding"] = [float(x) for x in m["embedding"]]


def _past_vectors(dim: int, history: list[dict[str, Any]]) -> None:
    """The vectors history rows keep for `as_of` search: those of another size (another embedder exported
    them) cannot be compared with this server's queries, and are dropped (that past version has none)."""
    for h in history:
        v = h.get("old_embedding")
        if v is not None:
            h["old_embedding"] = [float(x) for x in v] if len(v) == dim else None


def _settings_to_restore(project: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The exported project's settings, checked as PATCH and the profile settings check them: (columns, settings
    document). The target keeps its own name and description; settings this server does not know are dropped."""
    if not isinstance(project, dict):
        raise BadRequest("the header's project must be an object")
    document = project.get("settings") or {}
    if not isinstance(document, dict):
        raise BadRequest("the header's project settings must be an object")
    body = {k: v for k, v in document.items() if k in project_settings.SETTABLE and k not in ("name", "description")}
    body |= {k: project.get(k) for k in ("custom_instructions", "custom_categories")}
    columns, stored = project_settings.validate_changes(body)
    if (section := document.get(profiles.SECTION)) is not None:
        if not isinstance(section, dict):
            raise BadRequest("the header's profile settings must be an object")
        stored[profiles.SECTION] = profiles.merge_settings({}, section)
    if (section := document.get(dream.SECTION)) is not None:
        if not isinstance(section, dict):
            raise BadRequest("the header's Dream settings must be an object")
        extra = found if isinstance(found := section.get("extra"), dict) else {}
        restored, _ = dream.merge_config({}, {**extra, "reflection_enabled": section.get("reflection_enabled", False)})
        if dream.enabled(restored):
            restored["enabled_at"] = datetime.now(UTC).isoformat()  # with a boundary after the imported memories
        stored[dream.SECTION] = restored
    return columns, stored
