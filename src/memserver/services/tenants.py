"""Tenancy: keys -> principals, who may do what, and the operator's (CLI) management of orgs, projects,
members and keys. The same objects over HTTP, for a key's member: `services.orgs`.

Roles are OWNER and READER, in an organisation and in a project. An org OWNER owns every project of
the org; anyone else needs a project role. A key belongs to a member and is scoped to its own
project or to its organisation; a request may name another project (`org_id`/`project_id`) and
then acts on it when the key reaches it and its member has a role there (403 otherwise). A key may
carry its own role, a cap: a READER key only reads, whatever its member may do (`Principal.key_role`).
An organisation never loses its last OWNER (demotions and removals lock its OWNER rows).
"""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from memserver.domain.binding import BINDABLE
from memserver.domain.principal import Principal, capped
from memserver.domain.rows import MemberRoleRow
from memserver.errors import BadRequest, Conflict, Forbidden, NotFound
from memserver.storage.db import Database
from memserver.storage.repositories.tenants import KeyInfo, TenantRepository, hash_key

DEFAULT_ORG = "default"
DEFAULT_PROJECT = "default"
DEFAULT_EMAIL = "admin@memserver.local"
ROLES = ("OWNER", "READER")
SCOPES = ("project", "org")
PROJECT_NOT_FOUND = "Organization or project not found"


# What `new_key` makes: the prefix and 40 URL-safe characters (a little slack for older or imported keys).
_KEY_SHAPE = re.compile(r"m0-[A-Za-z0-9_-]{20,100}")


def well_formed_key(key: str) -> bool:
    """Whether a key could be one of ours; anything else is refused without a database round trip."""
    return _KEY_SHAPE.fullmatch(key) is not None


class KeyCache:
    """A short-lived LRU map from key hash to Principal: saves a database round trip per request."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Principal | None]:
        h = hash_key(key)
        entry = self._entries.get(h)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        self._entries.move_to_end(h)
        return True, entry[1]

    def put(self, key: str, principal: Principal | None) -> None:
        # Unknown (well-formed) keys are remembered briefly too, so repeating one cannot hammer the
        # database; a flood of distinct ones only evicts the least recently used entries.
        h = hash_key(key)
        self._entries[h] = (time.monotonic() + self.ttl_s, principal)
        self._entries.move_to_end(h)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget everything (after a change of roles or members made by this process)."""
        self._entries.clear()


async def resolve_key(db: Database, cache: KeyCache, key: str) -> Principal | None:
    if not well_formed_key(key):
        return None
    hit, principal = cache.get(key)
    if hit:
        return principal
    async with db.connect() as conn:
        repo = TenantRepository(conn)
        principal = await repo.principal_for_key(key)
        if principal is not None:
            await repo.touch_key(principal.key_id)
    cache.put(key, principal)
    return principal


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Forbidden(f"This API key has no access to {what} {value!r}") from None


async def act_on(
    db: Database, cache: KeyCache, principal: Principal, org_id: str | None, project_id: str | None
) -> Principal:
    """The principal for the project a request names (none named: the key's own project); 403 when the
    key cannot reach it or its member has no role there."""
    if org_id is not None and str(org_id) != str(principal.org_id):
        _uuid(org_id, "organization")
        raise Forbidden(f"Invalid API key for this organization: the key belongs to {principal.org_name!r}")
    if project_id is None or str(project_id) == str(principal.project_id):
        return principal
    pid = _uuid(project_id, "project")
    if principal.key_scope != "org":
        raise Forbidden(
            f"This API key is scoped to project {principal.project_name!r} and cannot act on project {project_id}"
        )
    cache_key = f"{principal.key_id}\x00{pid}"
    hit, cached = cache.get(cache_key)
    if not hit:
        cached = None
        assert principal.member_id is not None
        async with db.connect() as conn:
            row = await TenantRepository(conn).member_project(principal.member_id, pid)
        if row is not None:
            cached = replace(
                principal, project_id=row.id, project_name=row.name, role=capped(row.role, principal.key_role)
            )
        cache.put(cache_key, cached)
    if cached is None:
        raise Forbidden(f"This API key has no access to project {project_id}")
    return cached


# -- authorisation -------------------------------------------------------------------------------
def require_role(principal: Principal) -> None:
    """Any role in the project (READER or OWNER)."""
    if principal.role is None:
        raise Forbidden(f"{principal.user_email} has no role in project {principal.project_name!r}")


def require_owner(principal: Principal, action: str) -> None:
    """OWNER of the project: writes memories, changes settings and members, deletes the project."""
    require_role(principal)
    if principal.role != "OWNER":
        raise Forbidden(
            f"{principal.user_email} is {principal.role} in project {principal.project_name!r}; {action} needs OWNER"
        )


def require_org(principal: Principal, org_id: str) -> uuid.UUID:
    """The org is the key's own (keys never reach into other organisations)."""
    if str(org_id) != str(principal.org_id):
        raise Forbidden("Unauthorized: this API key belongs to another organization")
    return principal.org_id


def require_org_key_owner(principal: Principal, action: str) -> None:
    """An org-scoped key of an org OWNER (its own org): manages the org, its members and its projects."""
    if principal.key_scope != "org":
        raise Forbidden(
            f"Unauthorized: {action} needs an organization-scoped key of an OWNER (memserver keys create --scope org)"
        )
    if principal.org_role != "OWNER":
        raise Forbidden(
            f"Unauthorized: {principal.user_email} is {principal.org_role} of the org; {action} needs OWNER"
        )


def require_org_owner(principal: Principal, org_id: str, action: str) -> uuid.UUID:
    """`require_org_key_owner` for the org a path names, which must be the key's own."""
    oid = require_org(principal, org_id)
    require_org_key_owner(principal, action)
    return oid


async def keep_an_owner(repo: TenantRepository, org_id: uuid.UUID, email: str, new_role: str | None) -> None:
    """Refuse a change that would leave the org without an OWNER: `email` made `new_role` (None: removed).

    Locks the org's OWNER rows first, so of two concurrent demotions of its last two OWNERs the second
    waits for the first and is refused (call it inside the transaction that makes the change)."""
    if new_role == "OWNER":
        return
    owners = await repo.lock_org_owners(org_id)
    member = await repo.get_member(org_id, email)
    if member is not None and member.id in owners and len(owners) <= 1:
        verb = "removed" if new_role is None else "demoted"
        raise BadRequest(f"{email} is the organization's last OWNER and cannot be {verb}; make another OWNER first")


def parse_role(role: str | None) -> str:
    value = (role or "").upper()
    if value not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    return value


def parse_email(email: str | None) -> str:
    value = (email or "").strip()
    if "@" not in value:
        raise BadRequest("a valid email is required")
    return value


# -- operator (CLI) and bootstrap ----------------------------------------------------------------
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


async def _key_member(
    repo: TenantRepository, org_id: uuid.UUID, project_id: uuid.UUID, email: str, *, scope: str, role: str | None
) -> uuid.UUID:
    """The member a new key belongs to. A new email becomes a member with `role` (OWNER when none is given):
    in the org for an org-scoped key (and in the key's project, when that role is READER), in the project
    otherwise. An existing member's roles are never changed by making a key: the key's role only caps them."""
    member = await repo.get_member(org_id, email)
    if member is None:
        member_role = role or "OWNER"
        if scope == "org":
            member_id = await repo.add_member(org_id, email, member_role)
            if member_role != "OWNER":
                await repo.set_project_member(project_id, member_id, member_role)
        else:
            member_id = await repo.add_member(org_id, email, "READER")
            await repo.set_project_member(project_id, member_id, member_role)
        return member_id
    if scope == "project" and member.role != "OWNER" and await repo.project_role(project_id, member.id) is None:
        raise BadRequest(
            f"{email} has no role in this project, so a key of theirs for it could do nothing: give them one first "
            "(memserver members add EMAIL --org ORG --project PROJECT --role READER|OWNER)"
        )
    return member.id


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
    bound, defaults = _binding(binding, defaults)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await _org(repo, org)
        project_id = await _project(repo, org_id, org, project)
        member_id = await _key_member(repo, org_id, project_id, email, scope=scope, role=role)
        return await repo.create_key(
            project_id, name, member_id, email, scope=scope, defaults=defaults, binding=bound, role=role
        )


def _binding(
    binding: dict[str, str | None] | None, defaults: dict[str, str | None] | None
) -> tuple[dict[str, str], dict[str, str | None]]:
    """The key's binding (ids given, trimmed) and its defaults, which a binding sets (and may not contradict)."""
    bound = {k: v.strip() for k, v in (binding or {}).items() if v is not None}
    for k, v in bound.items():
        if k not in BINDABLE:
            raise BadRequest(f"a key can be bound to {' or '.join(BINDABLE)}, not {k}")
        if not v or v == "*":
            raise BadRequest(f"a key's bound {k} must be one entity id")
    merged = dict(defaults or {})
    for k, v in bound.items():
        if merged.get(k) not in (None, v):
            raise BadRequest(f"a key bound to {k} {v!r} cannot default to {k} {merged[k]!r}")
        merged[k] = v
    return bound, merged


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
