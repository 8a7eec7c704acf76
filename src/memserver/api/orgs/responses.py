"""Organisations, projects (with their settings) and members as the Platform answers them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from memserver.api.kit.wire import Message, Out
from memserver.domain.principal import Principal
from memserver.domain.rows.tenancy import KeyRow, MemberRoleRow, OrgRow, ProjectRow
from memserver.services import dream, project_settings
from memserver.services.project_settings import ProjectSettings, ProjectUpdate


class Member(Out):
    username: str
    email: str
    role: str
    user_id: str


class Members(Out):
    members: list[Member]


class OrgSummary(Out):
    """An organisation as the list shows it."""

    org_id: str
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    is_default: bool
    is_owner: bool
    user_role: str | None
    projects: int = Field(description="How many projects the organization has.")


class Org(Out):
    org_id: str
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    members: list[Member]
    is_default: bool
    byok_enabled: bool
    invitations: list[Any]
    owner_pricing_plan: str
    is_owner: bool
    user_role: str | None


class OrgCreated(Message):
    org_id: str


class ProjectCreated(Message):
    project_id: str


class SettingNote(Out):
    setting: str
    note: str


class ProjectUpdated(Message):
    """`message` as the Platform answers it; `notes` and `ignored` only when there is something to say."""

    notes: list[SettingNote] | None = Field(None, description="Settings set that have no effect, or a qualified one.")
    ignored: list[str] | None = Field(None, description="Keys of the body that are not project settings.")


class ProjectDream(Out):
    """Dream synthesis of the project (changed at `.../projects/{project_id}/dream/config/`)."""

    reflection_enabled: bool
    enabled_at: datetime | None


class Project(ProjectSettings):
    """A project with all its settings (contract §2.8): the keys of `ProjectSettings`, and these."""

    project_id: str
    id: str
    org_id: str
    name: str
    description: str | None
    multilingual: bool = Field(
        description="false until set (memories keep the input language); set false: inferred memories in English."
    )
    created_at: datetime
    updated_at: datetime
    members: list[Member]
    usecase: str | None
    update_custom_instructions: None
    summary_custom_instructions: None
    summary_batch_size: None
    summary_max_tokens: None
    expiration_date: None
    is_default: bool
    active_prompt_profile: None
    user_role: str | None
    dream: ProjectDream


def member_out(row: MemberRoleRow) -> dict[str, Any]:
    return {"username": row.email, "email": row.email, "role": row.role, "user_id": row.email}


def org_out(org: OrgRow, members: Sequence[MemberRoleRow], principal: Principal) -> dict[str, Any]:
    return {
        "org_id": str(org.id),
        "id": str(org.id),
        "name": org.name,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
        "members": [member_out(m) for m in members],
        "is_default": org.id == principal.org_id,
        "byok_enabled": False,
        "invitations": [],
        "owner_pricing_plan": "self-hosted",
        "is_owner": principal.org_role == "OWNER",
        "user_role": principal.org_role,
    }


def project_out(row: ProjectRow, members: Sequence[MemberRoleRow], principal: Principal) -> dict[str, Any]:
    s = project_settings.from_row(row)
    return {
        "project_id": str(row.id),
        "id": str(row.id),
        "org_id": str(row.org_id),
        "name": row.name,
        "description": row.description,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "members": [member_out(m) for m in members],
        **s.model_dump(),
        "multilingual": bool(s.multilingual),  # unset reads false, as the Platform's default does
        "usecase": s.usecase_setting,
        "update_custom_instructions": None,
        "summary_custom_instructions": None,
        "summary_batch_size": None,
        "summary_max_tokens": None,
        "expiration_date": None,
        "is_default": row.id == principal.key_project_id,
        "active_prompt_profile": None,
        "user_role": principal.role,
        "dream": dream.summary((row.settings or {}).get(dream.SECTION)),
    }


def project_updated(done: ProjectUpdate) -> dict[str, Any]:
    out: dict[str, Any] = {"message": "Project updated successfully"}
    if done.notes:
        out["notes"] = done.notes
    if done.ignored:
        out["ignored"] = done.ignored
    return out


class KeyItem(Out):
    """An API key as its org's OWNER sees it: never the key, never its hash (memserver extension)."""

    key_id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    project_id: str = Field(description="The key's own project.")
    project_name: str
    email: str = Field(description="The member the key belongs to.")
    scope: Literal["project", "org"]
    role: Literal["OWNER", "READER"] | None = Field(description="The key's cap on its member's roles; null: none.")
    bound_user_id: str | None
    bound_agent_id: str | None
    default_user_id: str | None
    default_agent_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class Keys(Out):
    keys: list[KeyItem]


class KeyCreated(KeyItem):
    message: str
    key: str = Field(description="The key itself: shown this once, never stored (only its hash is).")


def key_out(row: KeyRow) -> dict[str, Any]:
    return {
        "key_id": str(row.key_id),
        "name": row.name,
        "prefix": row.prefix,
        "project_id": str(row.project_id),
        "project_name": row.project_name,
        "email": row.email,
        "scope": row.scope,
        "role": row.role,
        "bound_user_id": row.bound_user_id,
        "bound_agent_id": row.bound_agent_id,
        "default_user_id": row.default_user_id,
        "default_agent_id": row.default_agent_id,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }
