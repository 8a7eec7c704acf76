"""Feedback on a memory."""

from __future__ import annotations

from memserver.api.kit.schema import Schema


class FeedbackBody(Schema):
    memory_id: str | None = None
    feedback: str | None = None
    feedback_reason: str | None = None
