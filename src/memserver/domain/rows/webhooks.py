"""Webhooks and their deliveries (see `memserver.domain.rows`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from memserver.domain.rows.events import EventRow


class WebhookRow(Protocol):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    url: str
    event_types: list[str]
    is_active: bool
    secret: str
    owner: str | None
    created_at: datetime
    updated_at: datetime


class DeliveryRow(EventRow, Protocol):
    """A webhook delivery: an `events` row of kind WEBHOOK, with its attempts and retry time."""

    attempts: int
    not_before: datetime | None
