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
