"""Webhooks and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from memserver.api.kit.wire import Out
from memserver.domain.rows.webhooks import DeliveryRow, WebhookRow


class Webhook(Out):
    webhook_id: str
    name: str
    url: str
    event_types: list[str]
    is_active: bool
    project: str = Field(description="The project's name.")
    owner: str | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(Webhook):
    secret: str | None = Field(description="Signs the deliveries; shown once.")


class Delivery(Out):
    delivery_id: str
    event_type: str | None
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    history: list[dict[str, Any]]
    body: Any
    created_at: datetime
    completed_at: datetime | None
    latency: float | None


class Deliveries(Out):
    results: list[Delivery]
    page: int
    page_size: int
    count: int = Field(description="The webhook's deliveries in all (memserver extension).")


class TestQueued(Out):
    message: str
    delivery_id: str = Field(description="The test delivery, listed with the webhook's deliveries.")


def webhook_out(row: WebhookRow, project_name: str) -> dict[str, Any]:
    return {
        "webhook_id": str(row.id),
        "name": row.name,
        "url": row.url,
        "event_types": list(row.event_types),
        "is_active": row.is_active,
        "project": project_name,
        "owner": row.owner,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def delivery_out(row: DeliveryRow) -> dict[str, Any]:
    attempts = row.results if isinstance(row.results, list) else []
    last = attempts[-1] if attempts else {}
    return {
        "delivery_id": str(row.id),
        "event_type": (row.payload or {}).get("event_type"),
        "status": row.status,
        "attempts": row.attempts,
        "response_status": last.get("response_status"),
        # a delivery that succeeded on a retry still shows why the earlier attempts failed
        "last_error": row.error or next((a["error"] for a in reversed(attempts) if a.get("error")), None),
        "next_attempt_at": row.not_before if row.status == "PENDING" else None,
        "history": attempts,
        "body": (row.payload or {}).get("body"),
        "created_at": row.created_at,
        "completed_at": row.completed_at,
        "latency": row.latency_ms,
    }
