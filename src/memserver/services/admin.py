"""The operator's (CLI) management of orgs, projects, members and keys, by name, and the first start's
bootstrap. The same objects over HTTP, for a key's member: `services.orgs`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from memserver.domain.principal import Principal
from memserver.domain.rows.tenancy import MemberRoleRow
from memserver.errors import BadRequest, Conflict, NotFound
from memserver.services import keys
from memserver.services.permissions import keep_an_owner, parse_role
from memserver.storage.db import Database
from memserver.storage.repositories.tenants import KeyInfo, TenantRepository

DEFAULT_ORG = "default"
DEFAULT_PROJECT = "default"
DEFAULT_EMAIL = "admin@memserver.local"
SCOPES = keys.SCOPES


async def bootstrap(db: Database) -> str | None:
    """On an empty database create org, project and an org-scoped OWNER key; returns it (shown once)."""
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        if await repo.count_orgs() > 0:
            return None
        org_id = await repo.create_org(DEFAULT_ORG)
        project_id = await repo.create_project(org_id, DEFAULT_PROJECT)
        member_id = await repo.add_member(org_id, DEFAULT_EMAIL, "OWNER")
        _, key = await repo.create_key(project_id, "default", member_id, DEFAULT_EMAIL, scope="org")
        return key


async def create_org(db: Database, name: str, owner_email: str | None = None) -> uuid.UUID:
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        if await repo.org_name_taken(name):
            raise Conflict(f"an org named {name!r} already exists")
        org_id = await repo.create_org(name)
        if owner_email:
            await repo.add_member(org_id, owner_email, "OWNER")
        return org_id


async def delete_org_named(db: Database, org: str) -> None:
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        await repo.delete_org(await _org(repo, org))


async def list_orgs(db: Database) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        return await TenantRepository(conn).list_orgs()


async def _org(repo: TenantRepository, org: str) -> uuid.UUID:
    org_id = await repo.get_org_id(org)
    if org_id is None:
        raise NotFound(f"no org named {org!r}")
    return org_id


async def _project(repo: TenantRepository, org_id: uuid.UUID, org: str, project: str) -> uuid.UUID:
    project_id = await repo.get_project_id(org_id, project)
    if project_id is None:
        raise NotFound(f"no project named {project!r} in org {org!r}")
    return project_id


async def create_project(db: Database, org: str, name: str, description: str | None = None) -> uuid.UUID:
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        return await repo.create_project(await _org(repo, org), name, description)


async def list_projects(db: Database, org: str | None) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        repo = TenantRepository(conn)
        return await repo.list_projects(None if org is None else await _org(repo, org))


async def delete_project_named(db: Database, org: str, project: str) -> None:
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await _org(repo, org)
        await repo.delete_project(await _project(repo, org_id, org, project))


async def ensure_member(
    repo: TenantRepository,
    org_id: uuid.UUID,
    email: str,
    *,
    org_role: str | None,
    project_id: uuid.UUID | None,
    project_role: str | None,
) -> uuid.UUID:
    """The member for an email (created with `org_role`, READER by default), with the given roles set.

    The operator's way to change roles: never leaves the org without an OWNER (`keep_an_owner`)."""
    member = await repo.get_member(org_id, email)
    if member is None:
        member_id = await repo.add_member(org_id, email, org_role or "READER")
        is_owner = (org_role or "READER") == "OWNER"
    else:
        member_id = member.id
        if org_role is not None and org_role != member.role:
            await keep_an_owner(repo, org_id, email, org_role)
            await repo.set_member_role(org_id, email, org_role)
        is_owner = (org_role or member.role) == "OWNER"
    if project_id is not None and project_role is not None:
        await repo.set_project_member(project_id, member_id, project_role)
    elif project_id is not None and not is_owner and await repo.project_role(project_id, member_id) is None:
        await repo.set_project_member(project_id, member_id, "OWNER")
    return member_id


async def create_key(
    db: Database,
    org: str,
    project: str,
    name: str,
    email: str,
    *,
    scope: str = "project",
    role: str | None = None,
    defaults: dict[str, str | None] | None = None,
    binding: dict[str, str | None] | None = None,
) -> tuple[uuid.UUID, str]:
    """A key of the member `email` (created if new), with `project` as its own project; `defaults`
    (user_id, agent_id) are used by clients whose calls name no entity (MCP tools). A `binding` (user_id,
    agent_id) confines the key to that entity's memories on every route (`domain.binding`); it is also
    the key's default.

    `role` is the key's own: READER makes a read-only key whatever its member may do (it acts with the lesser
    of the two); None: its member's roles. scope='project': the key reaches that project only; 'org': every
    project its member has a role in."""
    if scope not in SCOPES:
        raise BadRequest(f"scope must be one of {', '.join(SCOPES)}")
    role = None if role is None else parse_role(role)
    keys.binding_and_defaults(binding, defaults)  # checked before anything is looked up
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await _org(repo, org)
        project_id = await _project(repo, org_id, org, project)
        bound = {k: v for k, v in (binding or {}).items() if v is not None}
        new = keys.NewKey(name, project_id, email, scope, role, bound, dict(defaults or {}))
        return await keys.create_in(repo, org_id, new)


async def add_member(db: Database, org: str, email: str, role: str, project: str | None = None) -> None:
    """Operator: give `email` a role in the org (no project) or in one project of it."""
    role = parse_role(role)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await _org(repo, org)
        if project is None:
            await ensure_member(repo, org_id, email, org_role=role, project_id=None, project_role=None)
        else:
            pid = await _project(repo, org_id, org, project)
            await ensure_member(repo, org_id, email, org_role=None, project_id=pid, project_role=role)


async def remove_member(db: Database, org: str, email: str, project: str | None = None) -> bool:
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await _org(repo, org)
        if project is None:
            await keep_an_owner(repo, org_id, email, None)
            return await repo.remove_member(org_id, email)
        member = await repo.get_member(org_id, email)
        pid = await _project(repo, org_id, org, project)
        return member is not None and await repo.remove_project_member(pid, member.id)


async def list_members(db: Database, org: str, project: str | None = None) -> Sequence[MemberRoleRow]:
    async with db.connect() as conn:
        repo = TenantRepository(conn)
        org_id = await _org(repo, org)
        if project is None:
            return await repo.list_members(org_id)
        return await repo.list_project_members(await _project(repo, org_id, org, project))


async def operator_principal(db: Database, org: str, project: str) -> Principal:
    """The operator (CLI) acting on a project as its OWNER, without a key."""
    async with db.connect() as conn:
        repo = TenantRepository(conn)
        org_id = await _org(repo, org)
        project_id = await _project(repo, org_id, org, project)
        row = await repo.get_project(project_id)
    assert row is not None
    return Principal(
        org_id=org_id,
        project_id=project_id,
        key_id=uuid.UUID(int=0),
        user_email="operator",
        org_name=org,
        project_name=row.name,
        role="OWNER",
        key_project_id=project_id,
    )


async def create_tenant_with_key(
    db: Database, org: str, project: str, *, email: str = DEFAULT_EMAIL, scope: str = "project"
) -> tuple[uuid.UUID, str]:
    """Create (or reuse) an org and a new project with one key; used by tests and benchmarks.

    scope='org' makes the email an org OWNER with an org-scoped key (it can manage the org)."""
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await repo.get_org_id(org) or await repo.create_org(org)
        project_id = await repo.create_project(org_id, project)
        if scope == "org":
            member_id = await ensure_member(repo, org_id, email, org_role="OWNER", project_id=None, project_role=None)
        else:
            member_id = await ensure_member(
                repo, org_id, email, org_role=None, project_id=project_id, project_role="OWNER"
            )
        _, key = await repo.create_key(project_id, "default", member_id, email, scope=scope)
        return project_id, key


async def list_keys(db: Database) -> list[KeyInfo]:
    async with db.connect() as conn:
        return await TenantRepository(conn).list_keys()


MIN_REVOKE_PREFIX = 8


async def revoke_key(db: Database, ref: str) -> KeyInfo:
    """Revoke exactly one active key: by its full id, the plaintext key, or an unambiguous prefix of
    its id or key of at least MIN_REVOKE_PREFIX characters (key prefixes alone have only 5 random ones)."""
    ref = ref.strip()
    if len(ref) < MIN_REVOKE_PREFIX:
        raise BadRequest(f"give the key id, the key, or at least {MIN_REVOKE_PREFIX} characters of either")
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        matches = await repo.active_keys_matching(ref)
        if not matches:
            raise NotFound(f"no active key {ref!r}")
        if len(matches) > 1:
            listed = ", ".join(f"{k.id} ({k.org_name}/{k.project_name})" for k in matches[:10])
            raise Conflict(f"{ref!r} matches {len(matches)} active keys: {listed}; give the full key id")
        await repo.revoke_key_id(matches[0].id)
        return matches[0]
