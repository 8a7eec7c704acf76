"""User (and agent) profiles: settings, jobs that generate profiles with the LLM, and reading a profile.

A profile is an instance of the project's JSON schema for the entity type, written by the LLM from the
entity's memories, checked against the schema and pruned to its properties. Jobs are `PROFILE` events
(so they survive restarts and run on either runner); an `Idempotency-Key` binds a request to its job.
A profile is regenerated when it is read after `REFRESH_EVERY` new memories arrived since the last run.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson

from memserver.domain import limits
from memserver.domain.filters import Cond
from memserver.domain.jobs import JobKind
from memserver.domain.json_schema import SchemaError, check_schema, prune
from memserver.domain.principal import Principal
from memserver.domain.profile_schema import DEFAULT_USER_SCHEMA
from memserver.domain.scope import entity_column
from memserver.errors import BadRequest, Conflict, MemserverError, NotConfigured, NotFound
from memserver.pipeline.prompts import profile as profile_prompt
from memserver.pipeline.prompts.memory_lines import MAX_LINES, MemoryLine
from memserver.providers.llm.base import Usage
from memserver.providers.registry import Providers
from memserver.services import jobs, permissions, project_settings, usage
from memserver.services.documents import NO_LLM, require_llm
from memserver.storage.db import Connection, Database
from memserver.storage.repositories.entities import EntityRepository
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository
from memserver.storage.repositories.memories import MemoryRepository
from memserver.storage.repositories.profiles import ProfileRepository

ENTITY_TYPES = ("user", "agent")
MIN_MEMORIES = 1  # fewer: `insufficient_data`
REFRESH_EVERY = 10  # new memories since the last generation that make a read regenerate the profile
SAMPLE_DEFAULT, SAMPLE_MAX = 3, 10
SECTION = "profiles"


class NotYetAvailable(MemserverError):
    status_code = 501
    code = "not_yet_available"


def _error(exc_type: type[MemserverError], code: str, message: str, *, field: str | None = None) -> MemserverError:
    """The profile routes' error body: {"error": {"code", "message"}} (plus `detail`), and with `field` the
    setting it is about (`errors: {field: [message]}`, as the other settings' 400s name theirs)."""
    extra: dict[str, Any] = {"error": {"code": code, "message": message}}
    if field is not None:
        extra["errors"] = {field: [message]}
    return exc_type(message, extra=extra)


# -- settings ------------------------------------------------------------------------------------
def _settings_out(stored: dict[str, Any]) -> dict[str, Any]:
    """The settings as they apply: each entity type's schema (the default where the user type has none),
    `schema_source` saying which ("custom", "default", or null: an agent without a schema)."""
    out = {}
    for t in ENTITY_TYPES:
        _, schema, instructions = _entity_settings(stored, t)
        own = ((stored.get("entities") or {}).get(t) or {}).get("schema")
        source = "custom" if own is not None else ("default" if schema is not None else None)
        out[t] = {"schema": schema, "custom_instructions": instructions, "schema_source": source}
    return {"enabled": bool(stored.get("enabled", False)), "entities": out, "capabilities": {"full_rebuild": False}}


async def get_settings(db: Database, principal: Principal) -> dict[str, Any]:
    permissions.require_role(principal)
    return _settings_out(await project_settings.section(db, principal.project_id, SECTION))


async def update_settings(db: Database, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """Nested body ({enabled, entities: {user: {schema, custom_instructions}}}); a flat body is taken as the
    user's. Omitted = unchanged, null = cleared."""
    permissions.require_owner(principal, "changing profile settings")
    stored = merge_settings(await project_settings.section(db, principal.project_id, SECTION), body)
    await project_settings.set_section(db, principal.project_id, SECTION, stored)
    return _settings_out(stored)


def merge_settings(stored: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The profile settings `body` makes of `stored`, checked (400 on a bad value): what POST
    /v2/profiles/settings/ applies, and what an import restores."""
    stored = dict(stored)
    entities: dict[str, Any] = dict(stored.get("entities") or {})
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise _error(BadRequest, "invalid_settings", "enabled must be true or false", field="enabled")
        stored["enabled"] = body["enabled"]
    given = body.get("entities")
    if given is None and ({"schema", "custom_instructions"} & body.keys()):
        given = {"user": {k: body[k] for k in ("schema", "custom_instructions") if k in body}}
    if given is not None and not isinstance(given, dict):
        raise _error(BadRequest, "invalid_settings", "entities must be an object", field="entities")
    for etype, change in (given or {}).items():
        if etype not in ENTITY_TYPES or not isinstance(change, dict):
            raise _error(
                BadRequest, "invalid_settings", f"Unsupported settings for entity type {etype!r}", field="entities"
            )
        current = dict(entities.get(etype) or {})
        if "schema" in change:
            try:
                current["schema"] = (
                    None if change["schema"] is None else check_schema(change["schema"], descriptions=True)
                )
            except SchemaError as exc:
                raise _error(BadRequest, "invalid_schema", str(exc), field=f"entities.{etype}.schema") from None
            if len(orjson.dumps(current["schema"])) > 40_000:  # about 10,000 tokens
                raise _error(
                    BadRequest,
                    "invalid_schema",
                    "the schema is larger than about 10,000 tokens",
                    field=f"entities.{etype}.schema",
                )
        if "custom_instructions" in change:
            ci = change["custom_instructions"]
            if ci is not None and not isinstance(ci, str):
                raise _error(
                    BadRequest,
                    "invalid_settings",
                    "custom_instructions must be a string",
                    field=f"entities.{etype}.custom_instructions",
                )
            try:
                limits.check_chars(f"{etype} custom_instructions", ci or "")  # in every profile prompt
            except ValueError as exc:
                raise _error(
                    BadRequest, "invalid_settings", str(exc), field=f"entities.{etype}.custom_instructions"
                ) from None
            current["custom_instructions"] = ci
        entities[etype] = current
    stored["entities"] = entities
    return stored


def _entity_settings(stored: dict[str, Any], etype: str) -> tuple[bool, dict[str, Any] | None, str | None]:
    """(enabled, the schema that applies, custom instructions) of one entity type."""
    entities = found if isinstance(found := stored.get("entities"), dict) else {}
    ent = entities.get(etype) or {}
    return bool(stored.get("enabled")), effective_schema(ent.get("schema"), etype), ent.get("custom_instructions")


def effective_schema(stored: dict[str, Any] | None, etype: str) -> dict[str, Any] | None:
    """The schema a profile is written to: the project's own, else the default for users (agents need one)."""
    if stored is not None:
        return stored
    return DEFAULT_USER_SCHEMA if etype == "user" else None


# -- jobs ----------------------------------------------------------------------------------------
def _request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def create_job(
    db: Database,
    providers: Providers,
    queue: jobs.JobQueue,
    principal: Principal,
    body: dict[str, Any],
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Accept a `trigger` (one entity) or `sample` (a few) job; the same Idempotency-Key gives the same job."""
    permissions.require_owner(principal, "generating profiles")
    operation = body.get("operation") or ("trigger" if body.get("entity_id") else None)
    etype = body.get("entity_type") or "user"
    if operation == "regenerate":
        raise _error(NotYetAvailable, "not_yet_available", "operation 'regenerate' is not available yet")
    if operation not in ("trigger", "sample"):
        raise _error(BadRequest, "invalid_operation", "operation must be 'trigger' or 'sample'")
    if etype not in ENTITY_TYPES:
        raise _error(BadRequest, "invalid_entity_type", f"entity_type must be one of {', '.join(ENTITY_TYPES)}")
    if idempotency_key is not None and not 8 <= len(idempotency_key) <= 128:
        raise _error(BadRequest, "invalid_idempotency_key", "Idempotency-Key must be 8 to 128 characters")
    stored = await project_settings.section(db, principal.project_id, SECTION)
    enabled, schema, _ = _entity_settings(stored, etype)
    if not enabled:
        raise _error(
            BadRequest,
            "profiles_not_enabled",
            'profiles are not enabled for this project: POST /v2/profiles/settings/ with {"enabled": true}',
        )
    if schema is None:
        raise _error(
            BadRequest,
            "profiles_not_enabled",
            f"{etype} profiles need a schema: POST /v2/profiles/settings/ with "
            f'{{"entities": {{"{etype}": {{"schema": ...}}}}}}',
        )
    if providers.llm is None:
        raise _error(NotConfigured, "not_configured", NO_LLM.format(feature="Profile generation"))
    job_id = uuid.uuid4()
    request = {
        "operation": operation,
        "entity_type": etype,
        "entity_id": body.get("entity_id"),
        "limit": body.get("limit"),
    }
    async with db.transaction() as conn:
        repo = ProfileRepository(conn)
        if idempotency_key is not None:
            bound = await repo.claim_key(principal.project_id, idempotency_key, _request_hash(request), job_id)
            if not bound.new:
                if bound.request_hash != _request_hash(request):
                    raise _error(
                        Conflict, "idempotency_key_reused", "this Idempotency-Key was used with another request body"
                    )
                existing = await repo.job(principal.project_id, JobKind.PROFILE.value, bound.job_id)
                assert existing is not None
                return _accepted(existing.id, existing.payload, replayed=True)
        entity_ids = await _entities(conn, principal.project_id, operation, etype, body)
        for name in entity_ids:
            await repo.mark(principal.project_id, etype, name, "pending")
        payload = {"operation": operation, "entity_type": etype, "entity_ids": entity_ids}
        await JobRepository(conn).insert_pending(principal.project_id, job_id, JobKind.PROFILE, payload)
    queue.submit(job_id)  # after the commit: the runner must find the row
    return _accepted(job_id, payload, replayed=False)


async def _entities(
    conn: Connection, project_id: uuid.UUID, operation: str, etype: str, body: dict[str, Any]
) -> list[str]:
    if operation == "trigger":
        name = body.get("entity_id")
        if not isinstance(name, str) or not name:
            raise _error(BadRequest, "invalid_entity_id", "entity_id is required for operation 'trigger'")
        if await EntityRepository(conn).get(project_id, etype, name) is None:
            raise _error(NotFound, "entity_not_found", f"no {etype} {name!r} in this project")
        return [name]
    limit = body.get("limit", SAMPLE_DEFAULT)
    if limit is None:
        limit = SAMPLE_DEFAULT
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= SAMPLE_MAX:
        raise _error(BadRequest, "invalid_limit", f"limit must be an integer from 1 to {SAMPLE_MAX}")
    names: list[str] = await ProfileRepository(conn).busiest_entities(project_id, etype, limit)
    return names


def _accepted(job_id: uuid.UUID, payload: dict[str, Any], *, replayed: bool) -> dict[str, Any]:
    ids = list(payload.get("entity_ids") or [])
    out: dict[str, Any] = {
        "message": "Profile job accepted",
        "job_id": str(job_id),
        "status": "QUEUED",
        "status_url": f"/v2/profiles/jobs/{job_id}/",
        "operation": payload.get("operation"),
        "entity_type": payload.get("entity_type"),
        "entity_count_reserved": len(ids),
        "event_id": str(job_id),
        "replayed": replayed,
        "usage_units": 0,
        "results": [{"entity_type": payload.get("entity_type"), "entity_id": e} for e in ids],
    }
    if payload.get("operation") == "sample":
        out.update(sampled=len(ids), entity_ids=ids)
    elif ids:
        out.update(entity_id=ids[0])
    return out


async def get_job(db: Database, principal: Principal, job_id: str) -> dict[str, Any]:
    permissions.require_role(principal)
    try:
        jid = uuid.UUID(job_id)
    except ValueError:
        raise _error(NotFound, "job_not_found", "Profile job not found") from None
    async with db.connect() as conn:
        row = await ProfileRepository(conn).job(principal.project_id, JobKind.PROFILE.value, jid)
    if row is None:
        raise _error(NotFound, "job_not_found", "Profile job not found")
    ids = list((row.payload or {}).get("entity_ids") or [])
    results = list(row.results or []) if row.status in ("SUCCEEDED", "FAILED") else []
    counts = {s: sum(1 for r in results if r.get("status") == s) for s in ("succeeded", "failed", "skipped")}
    status = {"PENDING": "QUEUED", "RUNNING": "RUNNING", "FAILED": "FAILED"}.get(row.status, "SUCCEEDED")
    if row.status == "SUCCEEDED" and counts["failed"]:
        status = "PARTIALLY_SUCCEEDED" if counts["succeeded"] or counts["skipped"] else "FAILED"
    if row.status == "FAILED":
        counts["failed"] = len(ids)
    return {
        "job": {
            "id": str(row.id),
            "operation": (row.payload or {}).get("operation"),
            "entity_type": (row.payload or {}).get("entity_type"),
            "status": status,
            "total": len(ids),
            "enumeration_complete": True,
            "completed": sum(counts.values()) if row.status != "FAILED" else len(ids),
            **counts,
            "results": results,
            "error": row.error,
        }
    }


async def run_profile_job(db: Database, providers: Providers, job: ClaimedJob) -> None:
    """Generate each entity's profile: load its memories, ask the LLM (no transaction open), store it."""
    etype = job.payload["entity_type"]
    results = []
    spent = Usage()  # every entity's LLM use, failed ones included
    try:
        for name in job.payload.get("entity_ids") or []:
            results.append(await generate(db, providers, job.project_id, etype, name, spent=spent))
    except Exception:
        await jobs.record_spent(db, job, usage.as_metadata(spent))  # what the attempt cost until it failed
        raise
    async with db.transaction() as conn:
        await jobs.complete(JobRepository(conn), job, results, metadata=usage.as_metadata(spent))


async def generate(
    db: Database, providers: Providers, project_id: uuid.UUID, etype: str, name: str, *, spent: Usage | None = None
) -> dict[str, Any]:
    """One entity's profile; returns its job result {entity_type, entity_id, profile_id, status}. Its LLM use
    is added to `spent`, also when it fails."""
    stored = await project_settings.section(db, project_id, SECTION)
    enabled, schema, instructions = _entity_settings(stored, etype)
    async with db.connect() as conn:
        rows, total = await MemoryRepository(conn).list(
            project_id, _entity_node(etype, name), limit=MAX_LINES, offset=0
        )
        previous = await ProfileRepository(conn).get(project_id, etype, name)
    result: dict[str, Any] = {"entity_type": etype, "entity_id": name}
    status, doc, error = "succeeded", None, None
    if not enabled or schema is None:
        status = "not_enabled"
    elif total < MIN_MEMORIES:
        status = "insufficient_data"
    else:
        try:
            llm = require_llm(providers, "Profile generation")
            lines = [MemoryLine(text=r.memory, created_at=r.created_at) for r in reversed(rows)]
            prompt = profile_prompt.build(
                lines, schema, instructions, previous.profile if previous is not None else None, name
            )
            gen = await usage.spend(
                (spent or Usage()).add,
                llm.generate(prompt, profile_prompt.schema_reply(schema), context=profile_prompt.context(schema)),
            )
            doc = prune(gen.value.data, schema)
        except Exception as exc:  # recorded on the profile and in the job's results
            status, error = "failed", jobs.failure_reason(exc)
    async with db.transaction() as conn:
        profile_id = await ProfileRepository(conn).store(
            project_id, etype, name, status=status, profile=doc, memory_count=total, error=error
        )
    job_status = {"succeeded": "succeeded", "failed": "failed"}.get(status, "skipped")
    return {**result, "profile_id": str(profile_id), "status": job_status, "profile_status": status, "error": error}


def _entity_node(etype: str, name: str) -> Cond:
    return Cond(entity_column(etype), "eq", name)


# -- reading -------------------------------------------------------------------------------------
async def get_profile(
    db: Database, providers: Providers, queue: jobs.JobQueue, principal: Principal, etype: str, name: str
) -> dict[str, Any]:
    """The envelope the SDK reads; a profile REFRESH_EVERY memories behind is regenerated in the background."""
    permissions.require_role(principal)
    if etype not in ENTITY_TYPES:
        raise _error(BadRequest, "invalid_entity_type", f"entity_type must be one of {', '.join(ENTITY_TYPES)}")
    stored = await project_settings.section(db, principal.project_id, SECTION)
    enabled, schema, _ = _entity_settings(stored, etype)
    async with db.connect() as conn:
        if await EntityRepository(conn).get(principal.project_id, etype, name) is None:
            raise _error(NotFound, "entity_not_found", f"no {etype} {name!r} in this project")
        repo = ProfileRepository(conn)
        row = await repo.get(principal.project_id, etype, name)
        count = await repo.memory_count(principal.project_id, etype, name)
    if not enabled or schema is None:
        status = "not_enabled"
    elif row is None or row.status in ("not_enabled", "insufficient_data"):
        status = "insufficient_data" if count < MIN_MEMORIES else "pending"
    else:
        status = row.status
    stale = (
        row is None
        or row.status in ("not_enabled", "insufficient_data")
        or (row.status == "succeeded" and count >= row.memory_count + REFRESH_EVERY)
    )
    if status != "not_enabled" and count >= MIN_MEMORIES and stale and providers.llm is not None:
        await _refresh(db, queue, principal.project_id, etype, name, count)
        status = status if status == "succeeded" else "pending"
    return {
        "profile": dict(row.profile) if row is not None and status == "succeeded" else {},
        "status": status,
        "entity_type": etype,
        "entity_id": name,
        "updated_at": row.updated_at if row is not None else None,
        "generation_count": int(row.generation_count) if row is not None else 0,
        "error": row.error if row is not None and status == "failed" else None,  # the reason, in memserver's words
    }


async def _refresh(
    db: Database, queue: jobs.JobQueue, project_id: uuid.UUID, etype: str, name: str, count: int
) -> None:
    """Queue a regeneration, unless a concurrent read just did (one job for any number of readers)."""
    payload = {"operation": "trigger", "entity_type": etype, "entity_ids": [name], "automatic": True}
    job_id = uuid.uuid4()
    async with db.transaction() as conn:
        if not await ProfileRepository(conn).claim_refresh(project_id, etype, name, count, REFRESH_EVERY):
            return  # already on its way
        await JobRepository(conn).insert_pending(project_id, job_id, JobKind.PROFILE, payload)
    queue.submit(job_id)
