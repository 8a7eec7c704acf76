"""Tenancy use cases: resolve API keys (cached), bootstrap the first org/project/key, manage keys."""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from typing import Any

from memserver.errors import BadRequest, Conflict, NotFound
from memserver.storage.db import Database
from memserver.storage.repositories.tenants import KeyInfo, TenantRepository, hash_key
from memserver.types import Principal

DEFAULT_ORG = "default"
DEFAULT_PROJECT = "default"
DEFAULT_EMAIL = "admin@memserver.local"


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


async def bootstrap(db: Database) -> str | None:
    """On an empty database create org, project and key; returns the plaintext key (shown once)."""
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        if await repo.count_orgs() > 0:
            return None
        org_id = await repo.create_org(DEFAULT_ORG)
        project_id = await repo.create_project(org_id, DEFAULT_PROJECT)
        _, key = await repo.create_key(project_id, "default", DEFAULT_EMAIL)
        return key


async def create_org(db: Database, name: str) -> uuid.UUID:
    async with db.transaction() as conn:
        return await TenantRepository(conn).create_org(name)


async def list_orgs(db: Database) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        return await TenantRepository(conn).list_orgs()


async def create_project(db: Database, org: str, name: str) -> uuid.UUID:
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await repo.get_org_id(org)
        if org_id is None:
            raise NotFound(f"no org named {org!r}")
        return await repo.create_project(org_id, name)


async def list_projects(db: Database, org: str | None) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        repo = TenantRepository(conn)
        org_id = None
        if org is not None:
            org_id = await repo.get_org_id(org)
            if org_id is None:
                raise NotFound(f"no org named {org!r}")
        return await repo.list_projects(org_id)


async def create_key(db: Database, org: str, project: str, name: str, email: str) -> tuple[uuid.UUID, str]:
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await repo.get_org_id(org)
        if org_id is None:
            raise NotFound(f"no org named {org!r}")
        project_id = await repo.get_project_id(org_id, project)
        if project_id is None:
            raise NotFound(f"no project named {project!r} in org {org!r}")
        return await repo.create_key(project_id, name, email)


async def create_tenant_with_key(db: Database, org: str, project: str) -> tuple[uuid.UUID, str]:
    """Create (or reuse) an org and a new project with one key; used by tests and benchmarks."""
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        org_id = await repo.get_org_id(org) or await repo.create_org(org)
        project_id = await repo.create_project(org_id, project)
        _, key = await repo.create_key(project_id, "default", DEFAULT_EMAIL)
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
