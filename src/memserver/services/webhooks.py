"""Webhooks: per-project endpoints, and the job that delivers one memory change to one of them.

Deliveries are written by the memory write path in the same statement as the change (an outbox),
so none is lost or sent for a change that rolled back, and none delays the request: the recovery
sweep hands them to a runner. Each delivery is a job (kind WEBHOOK): retried with exponential
backoff, its attempts, response status and last error recorded on its row. How a delivery is signed,
and how a receiver checks it: `providers.webhooks.signature`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from memserver.config import WebhookSettings
from memserver.domain.jobs import JobKind
from memserver.domain.principal import Principal
from memserver.domain.rows.webhooks import DeliveryRow, WebhookRow
from memserver.errors import BadRequest, Conflict, Forbidden, NotFound
from memserver.providers.net import AddressRefused, OutboundError
from memserver.providers.registry import Providers
from memserver.providers.webhooks import sender
from memserver.providers.webhooks.signature import SIGNATURE_HEADER, sign
from memserver.services import jobs
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository
from memserver.storage.repositories.webhooks import CATEGORIZE, EVENT_TYPES, WebhookRepository

EVENT_TYPE_NAMES = frozenset({*EVENT_TYPES.values(), CATEGORIZE})
# Accepted for compatibility (the spec lists them); memserver has no ingest jobs that emit them yet.
OTHER_EVENT_TYPES = frozenset(
    {"ingest_job_completed", "ingest_job_partially_completed", "ingest_job_failed", "ingest_job_cancelled"}
)
NO_ACCESS = "You don't have access to this project"
NOT_FOUND = "Webhook not found"
PAUSED = "The webhook is paused; resume it to send a test event"
TEST_EVENT = "webhook_test"  # a test delivery's event type (memserver extension)


# ----------------------------------------------------------------------------------------------
# URL check
# ----------------------------------------------------------------------------------------------
def check_url(url: str, settings: WebhookSettings) -> None:
    """Syntax and literal addresses only. A host name is resolved, checked and pinned at each delivery,
    so one that cannot be resolved right now (no DNS here, a receiver not deployed yet) is accepted."""
    try:
        sender.check_url(url, settings)
    except OutboundError as exc:  # our words, never an address
        hint = (
            "; the operator can allow internal receivers (MEMSERVER_WEBHOOKS__ALLOWED_NETWORKS)"
            if isinstance(exc, AddressRefused)
            else ""
        )
        message = f"url: {exc}{hint}"
        raise BadRequest(message, extra={"url": [message]}) from None  # Mem0's field-keyed 400


def _event_types(value: Sequence[str]) -> list[str]:
    out: list[str] = []
    for t in value:
        name = t.replace(":", "_")  # old spec samples spell them memory:add
        if name not in EVENT_TYPE_NAMES | OTHER_EVENT_TYPES:
            message = f"event_types: unknown event type {t!r}"
            raise BadRequest(message, extra={"event_types": [message]})
        if name not in out:
            out.append(name)
    return out


# ----------------------------------------------------------------------------------------------
# use cases
# ----------------------------------------------------------------------------------------------
def _check_project(principal: Principal, project_id: str) -> None:
    if project_id != str(principal.project_id):
        raise Forbidden(NO_ACCESS)


def _webhook_uuid(webhook_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(webhook_id)
    except ValueError:
        raise NotFound(NOT_FOUND) from None


async def create(
    db: Database,
    settings: WebhookSettings,
    principal: Principal,
    project_id: str,
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
) -> WebhookRow:
    _check_project(principal, project_id)
    check_url(url, settings)
    types = _event_types(event_types)
    async with db.transaction() as conn:
        row = await WebhookRepository(conn).create(
            principal.project_id,
            name=name,
            url=url,
            event_types=types,
            secret="whsec_" + secrets.token_urlsafe(32),
            owner=principal.user_email,
            limit=settings.max_per_project,
        )
    if row is None:
        raise BadRequest(
            f"This project already has {settings.max_per_project} webhooks, the most it may have "
            "(MEMSERVER_WEBHOOKS__MAX_PER_PROJECT); delete one first."
        )
    return row


async def list_webhooks(db: Database, principal: Principal, project_id: str) -> list[WebhookRow]:
    _check_project(principal, project_id)
    async with db.connect() as conn:
        return await WebhookRepository(conn).list(principal.project_id)


async def update(
    db: Database, settings: WebhookSettings, principal: Principal, webhook_id: str, changes: dict[str, Any]
) -> None:
    wid = _webhook_uuid(webhook_id)
    values = {k: v for k, v in changes.items() if v is not None}
    if "url" in values:
        check_url(values["url"], settings)
    if "event_types" in values:
        values["event_types"] = _event_types(values["event_types"])
    async with db.connect() as conn:
        repo = WebhookRepository(conn)
        found = (
            await repo.update(principal.project_id, wid, values)
            if values
            else await repo.get(principal.project_id, wid)
        )
    if not found:
        raise NotFound(NOT_FOUND)


async def delete(db: Database, principal: Principal, webhook_id: str) -> None:
    wid = _webhook_uuid(webhook_id)
    async with db.transaction() as conn:
        if not await WebhookRepository(conn).delete(principal.project_id, wid):
            raise NotFound(NOT_FOUND)


async def deliveries(
    db: Database, principal: Principal, webhook_id: str, *, page: int, page_size: int
) -> tuple[list[DeliveryRow], int]:
    """A page of the webhook's deliveries, newest first, and how many it has in all."""
    wid = _webhook_uuid(webhook_id)
    async with db.connect() as conn:
        repo = WebhookRepository(conn)
        if await repo.get(principal.project_id, wid) is None:
            raise NotFound(NOT_FOUND)
        rows = await repo.deliveries(principal.project_id, wid, limit=page_size, offset=(page - 1) * page_size)
        return rows, await repo.count_deliveries(principal.project_id, wid)


async def send_test(db: Database, queue: jobs.JobQueue, principal: Principal, webhook_id: str) -> uuid.UUID:
    """Queue one signed test delivery to an active webhook (a WEBHOOK job like every delivery, listed with
    them, tried once: a probe must not be retried hours later). Returns the delivery's id."""
    wid = _webhook_uuid(webhook_id)
    async with db.connect() as conn:
        hook = await WebhookRepository(conn).get(principal.project_id, wid)
    if hook is None:
        raise NotFound(NOT_FOUND)
    if not hook.is_active:
        raise Conflict(PAUSED)
    body = {
        "event_type": TEST_EVENT,
        "event_details": {"event": "TEST", "message": "memserver test delivery"},
        "project_id": str(principal.project_id),
        "created_at": datetime.now(UTC).isoformat(),
    }
    payload = {"webhook_id": str(wid), "event_type": TEST_EVENT, "body": body, "single_attempt": True}
    return await jobs.submit(
        db, queue, principal.project_id, JobKind.WEBHOOK, payload, max_open=queue.max_pending or None
    )


# ----------------------------------------------------------------------------------------------
# delivery (a job)
# ----------------------------------------------------------------------------------------------
def delivery_handler() -> jobs.Handler:
    """The WEBHOOK job: POST the body, signed (`providers.webhooks`); 2xx succeeds, anything else is retried
    with backoff."""

    async def deliver(db: Database, providers: Providers, job: ClaimedJob) -> None:
        async with db.connect() as conn:
            hook = await WebhookRepository(conn).get(job.project_id, uuid.UUID(job.payload["webhook_id"]))
        if hook is None or not hook.is_active:
            raise jobs.JobFailed("webhook deleted or disabled")
        body = orjson.dumps(job.payload["body"])
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "memserver-webhooks",
            SIGNATURE_HEADER: sign(hook.secret, ts, body),
            "X-Memserver-Timestamp": str(ts),
            "X-Memserver-Delivery": str(job.id),
            "X-Memserver-Event": str(job.payload.get("event_type", "")),
            "X-Memserver-Attempt": str(job.attempt),
        }
        record: dict[str, Any] = {"attempt": job.attempt, "at": datetime.now(UTC).isoformat()}
        failed = jobs.JobFailed if job.payload.get("single_attempt") else jobs.JobRetry  # a test event: once
        try:
            sent = await providers.webhooks.post(hook.url, body, headers)
        except sender.DeliveryFailed as exc:
            reason = f"delivery failed: {exc}"
            attempt = {**record, "response_status": None, "error": reason, "duration_ms": exc.duration_ms}
            raise failed(reason, record=attempt) from None
        record.update(response_status=sent.status, duration_ms=sent.duration_ms)
        if not 200 <= sent.status < 300:
            reason = f"receiver answered HTTP {sent.status}"
            raise failed(reason, record={**record, "error": reason})
        async with db.transaction() as conn:
            await jobs.complete(JobRepository(conn), job, [*job.results, record])

    return deliver
