"""LLM-written documents over memories: summaries (synchronous) and exports (a job filling a JSON schema).

Load -> think -> apply: memories are read in a short statement, the LLM runs with no transaction open,
and an export's result is written with its job's SUCCEEDED status in one transaction.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

import orjson

from memserver.domain.filters import FilterError, Node, parse_filters
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.json_schema import SchemaError, check_schema
from memserver.domain.principal import Principal
from memserver.errors import BadRequest, MemserverError, NotConfigured, NotFound, ServiceUnavailable
from memserver.pipeline.prompts import export
from memserver.pipeline.prompts import summary as summary_prompt
from memserver.pipeline.prompts.memory_lines import MemoryLine
from memserver.providers.llm.base import LLM, Usage
from memserver.providers.registry import Providers
from memserver.services import jobs, permissions, usage
from memserver.services.key_slots import KeySlots
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository
from memserver.storage.repositories.memories import MemoryRepository
from memserver.storage.repositories.profiles import ProfileRepository

NO_LLM = (
    "{feature} needs an LLM, and no LLM is configured on this memserver. Configure any OpenAI-compatible chat "
    "endpoint with MEMSERVER_LLM__BASE_URL (and MEMSERVER_LLM__API_KEY, MEMSERVER_LLM__MODEL), e.g. OpenAI, "
    "Ollama, vLLM, LM Studio or a llama.cpp server."
)
ENTITY_FIELDS = ("user_id", "agent_id", "app_id", "run_id")
MAX_MEMORIES = 500
EXPORT_WAIT_S = 20.0  # a get of a running export waits this long for it


def require_llm(providers: Providers, feature: str) -> LLM:
    """The configured LLM, or a 501 saying how to configure one (as infer=true answers)."""
    if providers.llm is None:
        raise NotConfigured(NO_LLM.format(feature=feature))
    return providers.llm


class ExportFailed(MemserverError):
    status_code = 502
    code = "export_failed"


def _node(filters: Any, top_level: dict[str, Any] | None = None) -> Node | None:
    """Filters in any form the SDKs send (flat, AND/OR, or top-level entity ids); None = everything."""
    given: dict[str, Any] = {}
    if isinstance(filters, dict):
        given = {k: v for k, v in filters.items() if k not in ("org_id", "project_id")}
    elif filters is not None:
        raise BadRequest("filters must be an object")
    ids = {k: v for k, v in (top_level or {}).items() if k in ENTITY_FIELDS and v not in (None, "")}
    if ids:
        given = {"AND": [given, ids]} if given else ids
    if not given:
        return None
    try:
        return parse_filters(given)
    except FilterError as exc:
        raise BadRequest(str(exc)) from None


def _match(filters: Any, top_level: dict[str, Any]) -> dict[str, str]:
    """The plain entity ids a filter names, for finding an export again by its filters."""
    out: dict[str, str] = {k: str(v) for k, v in top_level.items() if k in ENTITY_FIELDS and v not in (None, "")}
    stack = [filters]
    while stack:
        f = stack.pop()
        if isinstance(f, dict):
            for k, v in f.items():
                if k in ENTITY_FIELDS and isinstance(v, str | int) and v != "*":
                    out.setdefault(k, str(v))
                elif k == "AND" and isinstance(v, list):
                    stack.extend(v)
    return out


async def _lines(db: Database, project_id: uuid.UUID, node: Node | None) -> tuple[list[MemoryLine], int]:
    async with db.connect() as conn:
        rows, total = await MemoryRepository(conn).list(project_id, node, limit=MAX_MEMORIES, offset=0)
    lines = [
        MemoryLine(
            text=r.memory,
            created_at=r.created_at,
            scope=" ".join(f"{f.removesuffix('_id')}={getattr(r, f)}" for f in ENTITY_FIELDS if getattr(r, f)),
        )
        for r in reversed(rows)  # oldest first: the prompt reads as a timeline
    ]
    return lines, int(total)


# -- summary --------------------------------------------------------------------------------------
async def summarize(
    db: Database,
    providers: Providers,
    principal: Principal,
    filters: Any,
    top_level: dict[str, Any],
    slots: KeySlots | None = None,
    *,
    meter: usage.UsageMeter | None = None,
) -> dict[str, Any]:
    """A summary of the memories matching the filters (no filters: the whole project). A key below OWNER
    has at most `slots.limit` running at once (a read, but an LLM call: a READER must not hold the LLM). Its
    LLM use is counted by `meter` for the project's usage (no event records a summary)."""
    permissions.require_role(principal)
    llm = require_llm(providers, "A summary (POST /v1/summary/)")
    node = _node(filters, top_level)
    held = slots.hold(principal.key_id) if slots is not None and principal.role != "OWNER" else nullcontext()
    with held:
        lines, total = await _lines(db, principal.project_id, node)
        scope = ", ".join(f"{k}={v}" for k, v in _match(filters, top_level).items())
        if not lines:
            summary = "There are no memories to summarise."
        else:
            pid = principal.project_id
            record = (lambda spent: meter.spent(pid, spent)) if meter is not None else (lambda spent: None)
            gen = await usage.spend(record, llm.generate(summary_prompt.build(lines, scope), summary_prompt.Reply))
            summary = gen.value.summary
    return {
        "summary": summary,
        "filters": filters or {},
        "memory_count": total,
        "created_at": datetime.now(UTC),
    }


# -- exports --------------------------------------------------------------------------------------
def parse_schema(schema: Any) -> dict[str, Any]:
    if isinstance(schema, str):
        try:
            schema = orjson.loads(schema)
        except orjson.JSONDecodeError:
            schema = None
    try:
        return check_schema(schema)
    except SchemaError as exc:
        raise BadRequest(f"Schema is required and must be a valid object ({exc})") from None


async def create_export(
    db: Database,
    providers: Providers,
    queue: jobs.JobQueue,
    principal: Principal,
    *,
    schema: Any,
    filters: Any,
    instructions: str | None,
    top_level: dict[str, Any],
    max_open: int | None = None,
) -> uuid.UUID:
    """Accept an export: a job that fills `schema` from the matching memories (429 past `max_open` open ones).

    OWNER only: an export writes a job and spends the project's LLM, and its cap is the project's; a READER
    filling it would leave the OWNER with 429s."""
    permissions.require_owner(principal, "exporting memories (an LLM job)")
    require_llm(providers, "A memory export (POST /v1/exports/)")
    parsed = parse_schema(schema)
    _node(filters, top_level)  # invalid filters are a 400 now, not a failed job later
    payload = {
        "schema": parsed,
        "filters": filters or {},
        "top_level": {k: v for k, v in top_level.items() if k in ENTITY_FIELDS and v not in (None, "")},
        "instructions": instructions,
        "match": _match(filters, top_level),
    }
    return await jobs.submit(db, queue, principal.project_id, JobKind.EXPORT, payload, max_open=max_open)


async def run_export_job(db: Database, providers: Providers, job: ClaimedJob) -> None:
    """Load the matching memories, ask the LLM for the schema's instance, store it with the job's status."""
    llm = require_llm(providers, "A memory export")
    p = job.payload
    lines, _ = await _lines(db, job.project_id, _node(p.get("filters"), p.get("top_level")))
    schema = p["schema"]
    prompt = export.build(lines, schema, p.get("instructions"))
    spent = Usage()
    try:
        gen = await usage.spend(
            spent.add, llm.generate(prompt, export.schema_reply(schema), context=export.context(schema))
        )
    except Exception:
        await jobs.record_spent(db, job, usage.as_metadata(spent))  # what the attempt cost until it failed
        raise
    async with db.transaction() as conn:
        await jobs.complete(JobRepository(conn), job, [gen.value.data], metadata=usage.as_metadata(spent))


async def get_export(
    db: Database, principal: Principal, export_id: str | None, filters: Any, top_level: dict[str, Any]
) -> dict[str, Any]:
    """The export's document, by id or as the newest export matching the filters (waits for a running one)."""
    permissions.require_role(principal)
    if not export_id and not filters and not _match(None, top_level):
        message = "One of the filters: memory_export_id, user_id, agent_id, app_id, run_id is required!"
        raise BadRequest(message, extra={"message": message})  # the Platform answers this 400 with `message`
    deadline = time.monotonic() + EXPORT_WAIT_S
    while True:
        async with db.connect() as conn:
            repo = ProfileRepository(conn)
            if export_id:
                try:
                    row = await repo.job(principal.project_id, JobKind.EXPORT.value, uuid.UUID(str(export_id)))
                except ValueError:
                    row = None
            else:
                row = await repo.latest_job(principal.project_id, JobKind.EXPORT.value, _match(filters, top_level))
        if row is None:
            raise NotFound("No memory export request found")
        if row.status == JobStatus.SUCCEEDED.value:
            results = row.results or [{}]
            return dict(results[0])
        if row.status == JobStatus.FAILED.value:
            raise ExportFailed(f"The memory export failed: {row.error}")
        if time.monotonic() > deadline:
            raise ServiceUnavailable("The memory export is still being prepared; try again in a few seconds")
        await asyncio.sleep(0.2)
