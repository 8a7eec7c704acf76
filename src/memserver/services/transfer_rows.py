"""The project file's lines as table rows: parsing a memserver export or a Mem0 Platform dump, renewing ids,
checking each field (pure: no database; `transfer` runs the import)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson

from memserver.domain.changes import SYNTHESIZED
from memserver.domain.jobs import JobKind, JobStatus
from memserver.errors import BadRequest
from memserver.pipeline import messages as msgs
from memserver.pipeline import time_expressions
from memserver.storage.repositories.transfer import KINDS, column_kinds

FORMAT = "memserver-export"
VERSION = 1
ENTITY_FIELDS = ("user_id", "agent_id", "app_id", "run_id")
ORDER = ("entity", "event", "memory", "history", "feedback", "read")  # rows referenced first
OWN_IDS = ("memory", "history", "event", "feedback")  # their ids are unique across the server
FINISHED = {JobStatus.SUCCEEDED.value, JobStatus.FAILED.value}
# this server's own
RUNTIME = ("lease_owner", "lease_expires_at", "not_before", "dispatched_at", "scope_key", "batch_id")

FORMAT = "memserver-export"
VERSION = 1
ENTITY_FIELDS = ("user_id", "agent_id", "app_id", "run_id")
ORDER = ("entity", "event", "memory", "history", "feedback", "read")  # rows referenced first
OWN_IDS = ("memory", "history", "event", "feedback")  # their ids are unique across the server
FINISHED = {JobStatus.SUCCEEDED.value, JobStatus.FAILED.value}
RUNTIME = ("lease_owner", "lease_expires_at", "not_before", "dispatched_at", "scope_key", "batch_id")


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


def own_ids(lines: dict[str, list[dict[str, Any]]]) -> dict[str, list[uuid.UUID]]:
    """The ids of the kinds that carry their own, checked: each record has one, a UUID, used once."""
    out: dict[str, list[uuid.UUID]] = {}
    for kind in OWN_IDS:
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


def row(kind: str, obj: dict[str, Any], ids: dict[uuid.UUID, uuid.UUID]) -> dict[str, Any]:
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
    if status not in FINISHED:
        event["status"] = JobStatus.FAILED.value
        event["error"] = f"imported while {str(status)[:20]}: not run on this server"
        event["completed_at"] = event.get("completed_at") or datetime.now(UTC)
    event.update(dict.fromkeys(RUNTIME))


def from_mem0(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
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


def records(header: dict[str, Any], objs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
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
