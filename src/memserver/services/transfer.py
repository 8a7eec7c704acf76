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
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any

import orjson

from memserver import jsonio
from memserver.domain.changes import SYNTHESIZED
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.principal import Principal
from memserver.errors import BadRequest, Conflict
from memserver.pipeline import messages as msgs
from memserver.pipeline import time_expressions
from memserver.providers.registry import Providers
from memserver.services import dream, permissions, profiles, project_settings
from memserver.storage.db import Database
from memserver.storage.repositories.dream import DreamRepository
from memserver.storage.repositories.tenants import TenantRepository
from memserver.storage.repositories.transfer import KINDS, TransferRepository, column_kinds

FORMAT = "memserver-export"
VERSION = 1
ENTITY_FIELDS = ("user_id", "agent_id", "app_id", "run_id")
_ORDER = ("entity", "event", "memory", "history", "feedback", "read")  # rows referenced first
_OWN_IDS = ("memory", "history", "event", "feedback")  # their ids are unique across the server
_FINISHED = {JobStatus.SUCCEEDED.value, JobStatus.FAILED.value}
# this server's own
_RUNTIME = ("lease_owner", "lease_expires_at", "not_before", "dispatched_at", "scope_key", "batch_id")


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
        "format": FORMAT,
        "version": VERSION,
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


def parse(content: bytes) -> list[dict[str, Any]]:
    """JSONL, or one JSON document (an array of memories, or a get_all page with `results`)."""
    text = content.strip()
    if not text:
        raise BadRequest("the import is empty")
    if text[:1] == b"[" or (text[:1] == b"{" and b"\n" not in text):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"not JSON or JSONL: {exc}") from None
        items = doc.get("results", [doc]) if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise BadRequest("expected a list of memories")
        return [i for i in items if isinstance(i, dict)]
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.strip():
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"line {n} is not JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise BadRequest(f"line {n} is not a JSON object")
            out.append(obj)
    return out


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"not a timestamp: {value!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _uuid(value: Any, kind: str, key: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadRequest(f"a {kind} record's {key} is not a UUID: {str(value)[:60]!r}") from None


def _own_ids(lines: dict[str, list[dict[str, Any]]]) -> dict[str, list[uuid.UUID]]:
    """The ids of the kinds that carry their own, checked: each record has one, a UUID, used once."""
    out: dict[str, list[uuid.UUID]] = {}
    for kind in _OWN_IDS:
        ids: list[uuid.UUID] = []
        for o in lines[kind]:
            if o.get("id") is None:
                raise BadRequest(f"a {kind} record has no id")
            ids.append(_uuid(o["id"], kind, "id"))
        if len(set(ids)) < len(ids):
            twice = next(i for i, n in Counter(ids).items() if n > 1)
            raise BadRequest(f"two {kind} records have the id {twice}")
        out[kind] = ids
    return out


def _mapped(ids: dict[uuid.UUID, uuid.UUID], value: Any) -> str:
    """An id kept inside a JSON document (provenance, an event's results), renewed with the rest."""
    try:
        return str(ids.get(uuid.UUID(str(value)), value))
    except ValueError:
        return str(value)


_NUMBER = (int, float)
_SHAPES: dict[str, Callable[[Any], bool]] = {  # what a JSON value must be for a column of each kind
    "text": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, _NUMBER) and not isinstance(v, bool),
    "texts": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "vector": lambda v: isinstance(v, list) and all(isinstance(x, _NUMBER) and not isinstance(x, bool) for x in v),
}


def _row(kind: str, obj: dict[str, Any], ids: dict[uuid.UUID, uuid.UUID]) -> dict[str, Any]:
    """A JSON line -> column values (checked: a value of the wrong type is a 400), with ids mapped to their new
    values when they were renewed."""
    kinds = column_kinds(kind)
    row: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in kinds:
            continue
        what = kinds[key]
        if value is None or what == "json":
            pass
        elif what == "uuid":
            value = ids.get(u := _uuid(value, kind, key), u)
        elif what == "time":
            value = _time(value)
        elif what == "date":
            try:
                value = date.fromisoformat(str(value)[:10])
            except ValueError:
                raise BadRequest(f"a {kind} record's {key} is not a date: {str(value)[:40]!r}") from None
        elif not _SHAPES[what](value):
            raise BadRequest(f"a {kind} record's {key} must be {what.replace('texts', 'a list of strings')}")
        row[key] = value
    if kind == "memory" and isinstance(row.get("provenance"), dict) and ids:
        row["provenance"] = _mapped_provenance(ids, row["provenance"])
    if kind == "event":
        if isinstance(row.get("results"), list):
            row["results"] = [
                {**r, "id": _mapped(ids, r["id"])} if isinstance(r, dict) and "id" in r else r for r in row["results"]
            ]
        _finished(row)
    return row


def _mapped_provenance(ids: dict[uuid.UUID, uuid.UUID], provenance: dict[str, Any]) -> dict[str, Any]:
    """A memory's provenance with its ids renewed: the add's event, and a pattern's run and sources."""
    out = dict(provenance)
    if "event_id" in out:
        out["event_id"] = _mapped(ids, out["event_id"])
    if isinstance(found := out.get("synthesis"), dict):
        synthesis = dict(found)
        if "event_id" in synthesis:
            synthesis["event_id"] = _mapped(ids, synthesis["event_id"])
        if isinstance(synthesis.get("sources"), list):
            synthesis["sources"] = [_mapped(ids, s) for s in synthesis["sources"]]
        out["synthesis"] = synthesis
    return out


def _finished(event: dict[str, Any]) -> None:
    """An imported event is a record of work done elsewhere, never work for this server: one still open is
    FAILED with the reason, and the runners' own columns (lease, schedule, ordering) start empty."""
    status = event.get("status")
    if status not in _FINISHED:
        event["status"] = JobStatus.FAILED.value
        event["error"] = f"imported while {str(status)[:20]}: not run on this server"
        event["completed_at"] = event.get("completed_at") or datetime.now(UTC)
    event.update(dict.fromkeys(_RUNTIME))


def _from_mem0(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Mem0 memory objects -> memory, history and entity lines (embeddings computed on import)."""
    rows: dict[str, list[dict[str, Any]]] = {"memory": [], "history": [], "entity": []}
    seen: set[tuple[Any, ...]] = set()
    entities: set[tuple[str, str]] = set()
    now = datetime.now(UTC).isoformat()
    for item in items:
        text = item.get("memory") or (item.get("data") or {}).get("memory")
        if not isinstance(text, str) or not text.strip():
            continue
        scope = {f: (None if item.get(f) in (None, "") else str(item[f])) for f in ENTITY_FIELDS}
        if not any(scope.values()):
            raise BadRequest(f"memory {item.get('id')!r} has no user_id, agent_id, app_id or run_id")
        h = msgs.text_hash(text)
        if (*scope.values(), h) in seen:
            continue
        seen.add((*scope.values(), h))
        try:
            mid = str(uuid.UUID(str(item.get("id"))))
        except ValueError:
            mid = str(uuid.uuid4())
        created = item.get("created_at") or now
        updated = item.get("updated_at") or created
        categories = item.get("categories") if isinstance(item.get("categories"), list) else None
        period = _event_period(text, created)
        rows["memory"].append(
            {
                "id": mid,
                "memory": text,
                "hash": h,
                **scope,
                "metadata": item.get("metadata") if isinstance(item.get("metadata"), dict) else None,
                "categories": categories,
                "immutable": bool(item.get("immutable", False)),
                "expiration_date": item.get("expiration_date"),
                "source": SYNTHESIZED if item.get("synthesized") is True else "import",  # a Dream pattern
                "provenance": {"imported_from": "mem0"},
                "created_at": created,
                "updated_at": updated,
                **period,
            }
        )
        rows["history"].append(
            {
                "id": str(uuid.uuid4()),
                "memory_id": mid,
                "event": "ADD",
                "old_memory": None,
                "new_memory": text,
                **scope,
                "categories": categories,
                "metadata": rows["memory"][-1]["metadata"],
                **period,
                "created_at": created,
                "updated_at": created,
            }
        )
        entities.update((t, v) for t, v in zip(("user", "agent", "app", "run"), scope.values(), strict=True) if v)
    rows["entity"] = [{"type": t, "name": n} for t, n in sorted(entities)]
    return rows


def _event_period(text: str, created: Any) -> dict[str, str]:
    """The period a Mem0 memory's text names, read against when it was recorded (Mem0 keeps none)."""
    try:
        found = time_expressions.event_period(text, _time(created) or datetime.now(UTC))
    except BadRequest:  # an unreadable created_at is reported where the row is checked
        return {}
    return {"event_start": found[0].isoformat(), "event_end": found[1].isoformat()} if found else {}


async def import_lines(db: Database, providers: Providers, principal: Principal, content: bytes) -> dict[str, int]:
    """Import a memserver export or a Mem0 `get_all` dump into the (empty) project; returns counts per kind."""
    prepared = await prepare_import(db, principal, parse(content))
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
        lines = _records(header, objs[1:])
        if header.get("project") is not None:
            restored = _settings_to_restore(header["project"])  # checked before anything is written
    else:
        lines = {k: [] for k in KINDS} | _from_mem0(objs)
    own = _own_ids(lines)
    async with db.connect() as conn:
        repo = TransferRepository(conn)
        for kind in ("memory", "history", "event"):
            if await repo.count(kind, principal.project_id):
                raise Conflict(f"project {principal.project_name!r} is not empty: import into an empty project")
        renew = [kind for kind in _OWN_IDS if await repo.taken_ids(kind, own[kind])]
    # Some ids exist elsewhere on this server (the same export imported twice, a copy of a project): every id
    # is renewed, consistently, so references between the records still hold.
    ids = {old: uuid.uuid4() for kind in _OWN_IDS for old in own[kind]} if renew else {}
    return PreparedImport({kind: [_row(kind, o, ids) for o in lines[kind]] for kind in KINDS}, restored)


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
        for kind in _ORDER:
            await repo.insert(kind, principal.project_id, rows[kind])
        if prepared.restored is not None:
            await TenantRepository(conn).update_project(principal.project_id, *prepared.restored)
            if dream.enabled(prepared.restored[1].get(dream.SECTION) or {}):  # imported memories are history
                await DreamRepository(conn).set_boundary_now(principal.project_id)
    return prepared.counts()


def _records(header: dict[str, Any], objs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A memserver export's lines by kind; webhook deliveries are left out (see the module's doc)."""
    try:
        version = int(header.get("version", 0))
    except (TypeError, ValueError):
        version = VERSION + 1
    if header.get("format") != FORMAT or version > VERSION:
        raise BadRequest(f"unsupported export: {header.get('format')} version {header.get('version')}")
    lines: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for obj in objs:
        kind = obj.get("record")
        if kind not in KINDS:
            raise BadRequest(f"unknown record {kind!r}")
        if kind == "event" and obj.get("event_type") == JobKind.WEBHOOK.value:
            continue
        lines[str(kind)].append(obj)
    return lines


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
