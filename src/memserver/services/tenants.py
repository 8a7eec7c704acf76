"""Tenancy use cases: resolve API keys (cached), bootstrap the first org/project/key, manage keys."""

from __future__ import annotations

import time
import uuid
from typing import Any

from memserver.errors import NotFound
from memserver.storage.db import Database
from memserver.storage.repositories.tenants import KeyInfo, TenantRepository, hash_key
from memserver.types import Principal

DEFAULT_ORG = "default"
DEFAULT_PROJECT = "default"
DEFAULT_EMAIL = "admin@memserver.local"


class KeyCache:
    """A short-lived map from key hash to Principal: saves a database round trip per request."""

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._entries: dict[bytes, tuple[float, Principal | None]] = {}

    def get(self, key: str) -> tuple[bool, Principal | None]:
        entry = self._entries.get(hash_key(key))
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: str, principal: Principal | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        # Unknown keys are remembered briefly too, so a flood of bad keys cannot hammer the database.
        self._entries[hash_key(key)] = (time.monotonic() + self.ttl_s, principal)


async def resolve_key(db: Database, cache: KeyCache, key: str) -> Principal | None:
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


async def revoke_key(db: Database, id_or_prefix: str) -> int:
    async with db.transaction() as conn:
        return await TenantRepository(conn).revoke_key(id_or_prefix)
