"""Exports and summaries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from memserver.api.kit.wire import Message, Out


class ExportAccepted(Message):
    id: str


class ExportDocument(Out):
    """The export: an object shaped by the JSON schema the export was requested with."""

    model_config = ConfigDict(extra="allow")


class Summary(Out):
    summary: str
    filters: dict[str, Any]
    memory_count: int
    created_at: datetime
