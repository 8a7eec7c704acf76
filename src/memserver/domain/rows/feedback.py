"""Feedback on a memory (see `memserver.domain.rows`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol


class FeedbackRow(Protocol):
    id: uuid.UUID
    memory_id: uuid.UUID
    member_email: str
    feedback: str
    feedback_reason: str | None
    created_at: datetime
    updated_at: datetime
