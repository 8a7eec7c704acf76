"""Organisations, projects and members over HTTP, for the member a key belongs to (`api/orgs/routes.py`).

Who may do what is decided here, with the checks of `services.permissions`: any member reads its org; an org
OWNER with an org-scoped key manages the org, its members and projects; a project OWNER manages the
project's members and deletes it.
"""

from __future__ import annotations

import uuid
from typing import Any

from memserver.domain.principal import Principal
from memserver.domain.rows.tenancy import MemberProjectRow, MemberRoleRow, MemberRow, OrgRow
from memserver.errors import Conflict, Forbidden, NotFound, invalid_field
from memserver.services import admin, permissions
from memserver.storage.db import Database
from memserver.storage.repositories.tenants import TenantRepository


# -- organisations ------------------------------------------------------------------------------
async def list_orgs_of(db: Database, principal: Principal) -> list[dict[str, Any]]:
    """The org of the key's member (members are per org: the same email elsewhere is another tenant's)."""
    if principal.member_id is None:
        return []
    async with db.connect() as conn:
        rows = await TenantRepository(conn).list_orgs(principal.member_id)
    return [{**r, "role": principal.org_role} for r in rows]  # as this key may act: capped by its own role


async def create_org_for(db: Database, principal: Principal, name: str) -> uuid.UUID:
    """A new org owned by the caller (its keys are made with `memserver keys create --org`)."""
    if principal.key_scope != "org" or principal.org_role != "OWNER":
        raise Forbidden("Unauthorized: creating organizations needs an organization-scoped key of an OWNER")
    return await admin.create_org(db, name, owner_email=principal.user_email)


async def get_org(db: Database, principal: Principal, org_id: str) -> tuple[OrgRow, list[MemberRow]]:
    oid = permissions.require_org(principal, org_id)
    async with db.connect() as conn:
        repo = TenantRepository(conn)
        org = await repo.get_org(oid)
        if org is None:
            raise NotFound("Organization not found")
        return org, await repo.list_members(oid)


async def delete_org(db: Database, principal: Principal, org_id: str) -> None:
    oid = permissions.require_org_owner(principal, org_id, "deleting the organization")
    async with db.transaction() as conn:
        if not await TenantRepository(conn).delete_org(oid):
            raise NotFound("Organization not found")


async def org_members(db: Database, principal: Principal, org_id: str) -> list[MemberRow]:
    oid = permissions.require_org(principal, org_id)
    async with db.connect() as conn:
        return await TenantRepository(conn).list_members(oid)


async def add_org_member(db: Database, principal: Principal, org_id: str, email: str, role: str) -> None:
    oid = permissions.require_org_owner(principal, org_id, "adding members")
    email, role = permissions.parse_email(email), permissions.parse_role(role)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        if await repo.get_member(oid, email) is not None:
            raise Conflict(f"{email} is already a member of the organization")
        await repo.add_member(oid, email, role)


async def set_org_member_role(db: Database, principal: Principal, org_id: str, email: str, role: str) -> None:
    oid = permissions.require_org_owner(principal, org_id, "changing roles")
    email, role = permissions.parse_email(email), permissions.parse_role(role)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        await permissions.keep_an_owner(repo, oid, email, role)  # locks the OWNER rows: concurrent demotions queue
        if await repo.get_member(oid, email) is None:
            raise NotFound(f"{email} is not a member of the organization")
        await repo.set_member_role(oid, email, role)


async def remove_org_member(db: Database, principal: Principal, org_id: str, email: str) -> None:
    oid = permissions.require_org_owner(principal, org_id, "removing members")
    email = permissions.parse_email(email)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        await permissions.keep_an_owner(repo, oid, email, None)
        if not await repo.remove_member(oid, email):
            raise NotFound(f"{email} is not a member of the organization")


# -- projects -----------------------------------------------------------------------------------
async def projects_of(db: Database, principal: Principal, org_id: str) -> list[MemberProjectRow]:
    """The org's projects this key reaches and its member has a role in."""
    permissions.require_org(principal, org_id)
    assert principal.member_id is not None
    async with db.connect() as conn:
        rows = await TenantRepository(conn).member_projects(principal.member_id)
    if principal.key_scope != "org":
        rows = [r for r in rows if r.id == principal.key_project_id]
    return rows


async def create_project_for(
    db: Database, principal: Principal, org_id: str, name: str, description: str | None
) -> uuid.UUID:
    oid = permissions.require_org_owner(principal, org_id, "creating projects")
    if not name or not name.strip():
        raise invalid_field("name", "name is required")
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        if await repo.project_name_taken(oid, name):
            raise invalid_field("name", f"A project named {name!r} already exists in this organization")
        return await repo.create_project(oid, name, description)


async def delete_project(db: Database, principal: Principal) -> None:
    """Delete the principal's project and everything in it (memories, events, keys, settings)."""
    permissions.require_owner(principal, "deleting the project")
    async with db.transaction() as conn:
        if not await TenantRepository(conn).delete_project(principal.project_id):
            raise NotFound(permissions.PROJECT_NOT_FOUND)


async def project_members(db: Database, principal: Principal) -> list[MemberRoleRow]:
    permissions.require_role(principal)
    async with db.connect() as conn:
        return await TenantRepository(conn).list_project_members(principal.project_id)


async def set_project_member(db: Database, principal: Principal, email: str, role: str, *, adding: bool) -> None:
    """Add a member to the project (a new email joins the org as READER) or change its project role."""
    permissions.require_owner(principal, "changing project members")
    email, role = permissions.parse_email(email), permissions.parse_role(role)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        member = await repo.get_member(principal.org_id, email)
        if member is None:
            if not adding:
                raise NotFound(f"{email} is not a member of this project")
            member_id = await repo.add_member(principal.org_id, email, "READER")
        else:
            member_id = member.id
            current = await repo.project_role(principal.project_id, member_id)
            if adding and current is not None:
                raise Conflict(f"{email} is already a member of this project")
            if not adding and current is None and member.role != "OWNER":
                raise NotFound(f"{email} is not a member of this project")
        await repo.set_project_member(principal.project_id, member_id, role)


async def remove_project_member(db: Database, principal: Principal, email: str) -> None:
    permissions.require_owner(principal, "changing project members")
    email = permissions.parse_email(email)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        member = await repo.get_member(principal.org_id, email)
        if member is None or not await repo.remove_project_member(principal.project_id, member.id):
            raise NotFound(f"{email} is not a member of this project")
