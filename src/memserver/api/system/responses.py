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
    key_id: str = Field(description="memserver extension: the key's id (as `memserver keys list` shows it).")
    role: Literal["OWNER", "READER"] = Field(
        description="memserver extension: the key's role in this project, after its own cap (OWNER writes)."
    )
    org_role: Literal["OWNER", "READER"] = Field(description="memserver extension: its role in the organization.")
    key_scope: Literal["project", "org"] = Field(
        description="memserver extension: 'org' keys reach every project their member has a role in."
    )
    key_role: Literal["OWNER", "READER"] | None = Field(
        description="memserver extension: the key's own cap (READER: read-only key); null: its member's roles."
    )
    default_user_id: str | None = Field(None, description="memserver extension, present when set.")
    default_agent_id: str | None = Field(None, description="memserver extension, present when set.")
    bound_user_id: str | None = Field(
        None, description="memserver extension, present when set: the key reaches only this user's memories."
    )
    bound_agent_id: str | None = Field(
        None, description="memserver extension, present when set: the key reaches only this agent's memories."
    )


class Health(Out):
    status: Literal["ok", "degraded"]
    database: str = Field(description="'ok' or 'error: <kind>'")
    embedder: str


class Readiness(Out):
    status: Literal["ready", "unavailable"]
    database: str = Field(description="'ok' or 'error: <kind>'")
    embedder: str = Field(description="'ok' or 'error: <kind>'")
