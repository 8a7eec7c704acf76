"""Organisations, members and projects (see `memserver.domain.rows`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol


class OrgRow(Protocol):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime


class MemberRoleRow(Protocol):
    """A member as a project lists it: its email and its role there."""

    email: str
    role: str


class MemberRow(MemberRoleRow, Protocol):
    """A member of an organisation."""

    id: uuid.UUID
    created_at: datetime


class MemberRefRow(MemberRoleRow, Protocol):
    id: uuid.UUID


class ProjectRow(Protocol):
    """A project with its settings document."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    description: str | None
    custom_instructions: str | None
    custom_categories: Any
    settings: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class MemberProjectRow(ProjectRow, Protocol):
    """A project a member reaches, with the member's role in it."""

    role: str


class KeyRow(Protocol):
    """An API key as its org's OWNER sees it: never the key, never its hash."""

    key_id: uuid.UUID
    name: str
    prefix: str
    project_id: uuid.UUID
    project_name: str
    email: str
    scope: str
    role: str | None
    bound_user_id: str | None
    bound_agent_id: str | None
    default_user_id: str | None
    default_agent_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
