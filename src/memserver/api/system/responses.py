"""Ping, health and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from memserver.api.kit.wire import Out


class Ping(Out):
    status: Literal["ok"]
    org_id: str
    project_id: str
    user_email: str
    org_name: str
    project_name: str


class Health(Out):
    status: Literal["ok", "degraded"]
    database: str = Field(description="'ok' or 'error: <kind>'")
    embedder: str


class Readiness(Out):
    status: Literal["ready", "unavailable"]
    database: str = Field(description="'ok' or 'error: <kind>'")
    embedder: str = Field(description="'ok' or 'error: <kind>'")
