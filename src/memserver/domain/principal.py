"""Who is calling: the `Principal` every service checks, and how a key caps its member's role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the project the request acts on (every query is scoped to it) and its org, the key's
    member and that member's roles. Resolved once per request (`api.deps.authenticate`); services check it."""

    org_id: uuid.UUID
    project_id: uuid.UUID
    key_id: uuid.UUID
    user_email: str
    org_name: str
    project_name: str
    member_id: uuid.UUID | None = None
    role: str | None = "OWNER"  # the role in project_id (the member's, capped by the key's): OWNER | READER | None
    org_role: str = "OWNER"  # the role in the organisation (the member's, capped by the key's): OWNER | READER
    key_scope: str = "project"  # 'project': only its own project; 'org': any project its member has a role in
    key_project_id: uuid.UUID | None = None  # the key's own (default) project
    default_user_id: str | None = None  # the key's default entity ids (MCP tool calls that name none)
    default_agent_id: str | None = None
    key_role: str | None = None  # the key's own cap (READER: a read-only key); None: its member's roles
    # A bound key reaches only memories carrying these ids, on every route (`memserver.domain.binding`).
    bound_user_id: str | None = None
    bound_agent_id: str | None = None

    @property
    def binding(self) -> dict[str, str]:
        """The entity ids this key is bound to (empty: not bound)."""
        pairs = (("user_id", self.bound_user_id), ("agent_id", self.bound_agent_id))
        return {k: v for k, v in pairs if v is not None}


def capped(role: str | None, cap: str | None) -> str | None:
    """A member's role as a key capped at `cap` may use it: the lesser of the two (no role stays none)."""
    if role is None or cap is None:
        return role
    return "READER" if "READER" in (role, cap) else role
