"""Dream synthesis (Mem0 Platform's Synthesis): the per-project setting, the scheduler, and runs asked for by hand.

A project turns Synthesis on with `reflection_enabled` (`.../projects/{id}/dream/config/`). Turning it on sets a
forward boundary: only memories added afterwards are ever evidence. A scheduler tick (`tick`, every
`MEMSERVER_DREAM__TICK_S` from the job sweep of any process) queues a DREAM job for each user with new
eligible memories, at least `MIN_MEMORIES` of them, whose cadence has passed; the job (`services.dream_run`)
makes one LLM call and writes the user's pattern memories. Jobs are `events` rows like every job: leases,
retries, back-pressure and the events feed come with them, and at most one is open per user.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from memserver.config import DreamSettings
from memserver.domain import limits
from memserver.domain.jobs import JobKind
from memserver.domain.principal import Principal
from memserver.errors import BadRequest, NotConfigured, TooManyRequests
from memserver.providers.registry import Providers
from memserver.services import jobs, permissions, project_settings
from memserver.services.documents import NO_LLM
from memserver.storage.db import Database
from memserver.storage.repositories.dream import DreamRepository
from memserver.storage.repositories.job_sweep import DueJob

log = logging.getLogger(__name__)

SECTION = "dream"
FEATURE = "Dream synthesis"
# Keys of the answer that describe the server: sent back by a client that PATCHes what it read, never stored.
READ_ONLY = frozenset({"enabled_at", "boundary_seq", "supersede", "merge", "synthesis", "entitlements", "notes"})
MAX_EXTRA_BYTES = 4096  # other Dream options a client sends, kept as given (without effect)
INERT = "kept; memserver has no such Dream option, so it has no effect"


# -- the setting ----------------------------------------------------------------------------------
def config_out(stored: dict[str, Any], settings: DreamSettings) -> dict[str, Any]:
    """The Dream configuration as GET and PATCH answer it: `reflection_enabled` as the Platform names it, then
    what memserver does (Supersede and Merge always on, Synthesis's schedule and bounds)."""
    extra = found if isinstance(found := stored.get("extra"), dict) else {}
    return {
        **extra,
        "reflection_enabled": bool(stored.get("reflection_enabled", False)),
        "enabled_at": stored.get("enabled_at") if stored.get("reflection_enabled") else None,
        "supersede": True,
        "merge": True,
        "synthesis": {
            "cadence_seconds": settings.cadence_s,
            "min_memories": settings.min_memories,
            "max_memories_per_run": settings.max_memories,
            "max_patterns_per_run": settings.max_patterns_per_run,
            "scheduler": settings.enabled,
        },
        "entitlements": {"synthesis": True},
    }


def summary(stored: Any) -> dict[str, Any]:
    """Whether Synthesis is on, and since when (the project GET shows it)."""
    on = isinstance(stored, dict) and enabled(stored)
    return {"reflection_enabled": on, "enabled_at": stored.get("enabled_at") if on else None}


def enabled(stored: dict[str, Any]) -> bool:
    return stored.get("reflection_enabled") is True


async def get_config(db: Database, principal: Principal, settings: DreamSettings) -> dict[str, Any]:
    permissions.require_role(principal)
    return config_out(await project_settings.section(db, principal.project_id, SECTION), settings)


async def update_config(
    db: Database, providers: Providers, principal: Principal, body: dict[str, Any], settings: DreamSettings
) -> dict[str, Any]:
    """PATCH: `reflection_enabled` turns Synthesis on (setting the forward boundary: memories stored so far are
    never evidence) or off (patterns already written stay). Other options are kept without effect, said in
    `notes`."""
    permissions.require_owner(principal, "changing the Dream settings")
    stored = await project_settings.section(db, principal.project_id, SECTION)
    merged, notes = merge_config(stored, body)
    if enabled(merged) and not enabled(stored):
        if providers.llm is None:
            raise NotConfigured(NO_LLM.format(feature=FEATURE))
        async with db.connect() as conn:
            merged["boundary_seq"] = await DreamRepository(conn).current_seq()
        merged["enabled_at"] = datetime.now(UTC).isoformat()
    await project_settings.set_section(db, principal.project_id, SECTION, merged)
    out = config_out(merged, settings)
    return {**out, "notes": notes} if notes else out


def merge_config(stored: dict[str, Any], body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The Dream section `body` makes of `stored` (400 on a bad value), and a note per option kept without
    effect. What PATCH applies, and what an import restores (with a new boundary)."""
    merged = dict(stored)
    if "reflection_enabled" in body:
        if not isinstance(body["reflection_enabled"], bool):
            raise BadRequest("reflection_enabled must be true or false")
        merged["reflection_enabled"] = body["reflection_enabled"]
        if not body["reflection_enabled"]:
            merged.pop("enabled_at", None)
    extra = dict(merged.get("extra") or {})
    given = {
        k: v for k, v in body.items() if k not in READ_ONLY and k not in ("reflection_enabled", "org_id", "project_id")
    }
    extra.update(given)
    try:
        limits.check_json(extra)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if len(orjson.dumps(extra)) > MAX_EXTRA_BYTES:
        raise BadRequest(f"the Dream options other than reflection_enabled take more than {MAX_EXTRA_BYTES} bytes")
    if extra:
        merged["extra"] = extra
    return merged, [{"setting": k, "note": INERT} for k in sorted(given)]


# -- the scheduler --------------------------------------------------------------------------------
async def tick(db: Database, settings: DreamSettings) -> list[DueJob]:
    """One scheduler round (at most one per `tick_s` across processes): queue a run for each user due one.

    Reads only the memories added since the tick before last, and counts the memories of the users they
    belong to (up to the minimum); returns the jobs queued, for the caller to hand off after the commit."""
    if not settings.enabled:
        return []
    async with db.transaction() as conn:
        repo = DreamRepository(conn)
        seqs = await repo.claim_tick(settings.tick_s)
        if seqs is None:
            return []
        projects = await repo.enabled_projects()
        if not projects:
            return []
        await repo.mark_touched(seqs, projects)
        found = await repo.due(projects, minimum=settings.min_memories, limit=4 * settings.max_users_per_tick)
        await repo.mark_short([r for r in found if r.eligible < settings.min_memories])
        ready = [r for r in found if r.eligible >= settings.min_memories]
        room = {
            p: settings.max_open_per_project - n
            for p, n in (await repo.open_runs([r.project_id for r in ready])).items()
        }
        picked: list[tuple[uuid.UUID, str]] = []
        for r in ready:
            if len(picked) >= settings.max_users_per_tick:
                break
            if room.get(r.project_id, settings.max_open_per_project) > 0:  # back-pressure per project
                room[r.project_id] = room.get(r.project_id, settings.max_open_per_project) - 1
                picked.append((r.project_id, r.user_id))
        queued = await repo.queue(picked, "schedule")
    if queued:
        log.info("dream: queued %d synthesis run(s)", len(queued))
    return [DueJob(r.id, r.created_at, JobKind.DREAM) for r in queued]


# -- a run asked for ------------------------------------------------------------------------------
async def queue_run(
    db: Database,
    providers: Providers,
    queue: jobs.JobQueue,
    principal: Principal,
    body: dict[str, Any],
    settings: DreamSettings,
) -> dict[str, Any]:
    """Queue a run for one user now, whatever the cadence (not the minimum: the run checks it and says so). A
    user with an open run gets that run back, not a second one."""
    permissions.require_owner(principal, "starting a Dream synthesis run")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip():
        raise BadRequest("user_id is required: the user whose memories to synthesize")
    try:
        limits.check_entity_id("user_id", user_id)
        limits.check_text(user_id)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if not enabled(await project_settings.section(db, principal.project_id, SECTION)):
        raise BadRequest(
            'Synthesis is off for this project: PATCH .../dream/config/ with {"reflection_enabled": true} first'
        )
    if providers.llm is None:
        raise NotConfigured(NO_LLM.format(feature=FEATURE))
    async with db.transaction() as conn:
        repo = DreamRepository(conn)
        new = None
        if (existing := await repo.open_run(principal.project_id, user_id)) is None:
            if (await repo.open_runs([principal.project_id])).get(
                principal.project_id, 0
            ) >= settings.max_open_per_project:
                raise TooManyRequests(
                    f"This project already has {settings.max_open_per_project} Dream runs waiting to run; retry later.",
                    extra={"retry_after": queue.retry_after_s},
                )
            new = next(iter(await repo.queue([(principal.project_id, user_id)], "request")), None)
            existing = new or await repo.open_run(principal.project_id, user_id)  # a concurrent request's
    if existing is None:  # the run a concurrent request queued has finished already
        raise TooManyRequests("A Dream run of this user just finished; retry.", extra={"retry_after": 1})
    if new is not None:
        queue.submit(new.id, JobKind.DREAM)  # after the commit: the runner must find the row
    return {
        "message": "Synthesis run queued" if new is not None else "A synthesis run of this user is already queued",
        "event_id": str(existing.id),
        "status": existing.status,
        "user_id": user_id,
    }
