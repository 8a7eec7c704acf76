"""Webhooks of a project, their deliveries (`events` rows of kind WEBHOOK), and the outbox that writes them.

`outbox_insert` is added to each statement of the single memory write path
(`memory_writes.MemoryWriter`), so a delivery row exists exactly when its memory change commits.
"""

from __future__ import annotations

import builtins
import typing
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Insert, Text, and_, any_, cast, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.expression import CTE

from memserver.domain.changes import Op
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.rows.webhooks import DeliveryRow, WebhookRow
from memserver.domain.scope import ENTITY_FIELDS
from memserver.storage.models import Event, Webhook, table_of
from memserver.storage.repositories.base import Repository
from memserver.storage.repositories.jobs import JOBS_CHANNEL

W = table_of(Webhook)
EV = table_of(Event)

# memory change -> the webhook event type that subscribes to it
EVENT_TYPES: dict[Op, str] = {Op.ADD: "memory_add", Op.UPDATE: "memory_update", Op.DELETE: "memory_delete"}
CATEGORIZE = "memory_categorize"


def _outbox(changed: CTE, event_type: str, details: ColumnElement[Any]) -> Insert:
    body = func.jsonb_build_object(
        "event_details",
        details,
        "event_type",
        literal(event_type),
        "project_id",
        cast(changed.c.project_id, Text),
        *(x for c in ENTITY_FIELDS for x in (literal(c), changed.c[c])),
        "created_at",
        func.now(),
    )
    payload = func.jsonb_build_object("webhook_id", cast(W.c.id, Text), "event_type", literal(event_type), "body", body)
    # RETURNING pg_notify: the runners hear of the deliveries when (and only if) the change commits;
    # Postgres folds the identical notifications of one transaction into one.
    return (
        insert(EV)
        .from_select(
            ["id", "project_id", "event_type", "status", "payload"],
            select(
                func.gen_random_uuid(),
                changed.c.project_id,
                literal(JobKind.WEBHOOK.value),
                literal("PENDING"),
                payload,
            ).select_from(
                changed.join(
                    W,
                    and_(
                        W.c.project_id == changed.c.project_id,
                        W.c.is_active,
                        literal(event_type) == any_(W.c.event_types),
                    ),
                )
            ),
        )
        .returning(func.pg_notify(literal(JOBS_CHANNEL), literal("")))
    )


def outbox_insert(changed: CTE, event: Op, memory: ColumnElement[Any]) -> Insert:
    """One PENDING delivery per (changed memory, active webhook of its project subscribed to `event`).

    The body is Mem0's documented payload (`event_details`) plus memserver fields beside it.
    """
    details = func.jsonb_build_object(
        "id", cast(changed.c.id, Text), "data", func.jsonb_build_object("memory", memory), "event", literal(event.value)
    )
    return _outbox(changed, EVENT_TYPES[event], details)


def categorize_outbox_insert(changed: CTE) -> Insert:
    """A `memory_categorize` delivery for each memory whose categories were set."""
    details = func.jsonb_build_object(
        "event",
        literal("CATEGORIZE"),
        "memory_id",
        cast(changed.c.id, Text),
        "categories",
        func.coalesce(func.to_jsonb(changed.c.categories), text("'[]'::jsonb")),
    )
    return _outbox(changed, CATEGORIZE, details)


class WebhookRepository(Repository):
    async def create(
        self,
        project_id: uuid.UUID,
        *,
        name: str,
        url: str,
        event_types: Sequence[str],
        secret: str,
        owner: str,
        limit: int | None = None,
    ) -> WebhookRow | None:
        """The new webhook; None when the project already has `limit` webhooks (run inside a transaction)."""
        if limit is not None:
            # Creations of one project take turns (released at commit), so two at once cannot both pass the count.
            key = func.hashtextextended(literal(f"webhooks:{project_id}"), 0)
            await self.conn.execute(select(func.pg_advisory_xact_lock(key)))
        row = {
            "id": uuid.uuid4(),
            "project_id": project_id,
            "name": name,
            "url": url,
            "event_types": list(event_types),
            "secret": secret,
            "owner": owner,
        }
        values = select(*(literal(v, W.c[k].type) for k, v in row.items()))
        if limit is not None:
            count = select(func.count()).select_from(W).where(W.c.project_id == project_id).scalar_subquery()
            values = values.where(count < limit)
        stmt = insert(W).from_select(list(row), values).returning(*W.c)
        return typing.cast(WebhookRow | None, (await self.conn.execute(stmt)).first())

    async def list(self, project_id: uuid.UUID) -> list[WebhookRow]:
        stmt = select(W).where(W.c.project_id == project_id).order_by(W.c.created_at, W.c.id)
        return typing.cast(list[WebhookRow], list((await self.conn.execute(stmt)).all()))

    async def get(self, project_id: uuid.UUID, webhook_id: uuid.UUID) -> WebhookRow | None:
        stmt = select(W).where(W.c.project_id == project_id, W.c.id == webhook_id)
        return typing.cast(WebhookRow | None, (await self.conn.execute(stmt)).first())

    async def update(self, project_id: uuid.UUID, webhook_id: uuid.UUID, values: dict[str, Any]) -> bool:
        stmt = (
            update(W)
            .where(W.c.project_id == project_id, W.c.id == webhook_id)
            .values(**values, updated_at=func.now())
            .returning(W.c.id)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def delete(self, project_id: uuid.UUID, webhook_id: uuid.UUID) -> bool:
        """Delete the webhook and cancel its deliveries that have not run yet."""
        stmt = delete(W).where(W.c.project_id == project_id, W.c.id == webhook_id).returning(W.c.id)
        if (await self.conn.execute(stmt)).first() is None:
            return False
        await self.conn.execute(
            update(EV)
            .where(
                EV.c.project_id == project_id,
                EV.c.event_type == JobKind.WEBHOOK.value,
                EV.c.status == JobStatus.PENDING.value,
                EV.c.payload["webhook_id"].astext == str(webhook_id),
            )
            .values(status=JobStatus.FAILED.value, error="webhook deleted", completed_at=func.now())
        )
        return True

    @staticmethod
    def _of_webhook(project_id: uuid.UUID, webhook_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
        return (
            EV.c.project_id == project_id,
            EV.c.event_type == JobKind.WEBHOOK.value,
            EV.c.payload["webhook_id"].astext == str(webhook_id),
        )

    async def count_deliveries(self, project_id: uuid.UUID, webhook_id: uuid.UUID) -> int:
        stmt = select(func.count()).select_from(EV).where(*self._of_webhook(project_id, webhook_id))
        return int((await self.conn.execute(stmt)).scalar_one())

    async def deliveries(
        self, project_id: uuid.UUID, webhook_id: uuid.UUID, *, limit: int, offset: int
    ) -> builtins.list[DeliveryRow]:
        stmt = (
            select(EV)
            .where(*self._of_webhook(project_id, webhook_id))
            .order_by(EV.c.created_at.desc(), EV.c.id)
            .limit(limit)
            .offset(offset)
        )
        return typing.cast(builtins.list[DeliveryRow], list((await self.conn.execute(stmt)).all()))
