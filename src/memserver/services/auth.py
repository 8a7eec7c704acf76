"""Keys -> principals: a request's key resolved (through the key cache) to the `Principal` it acts as, and
the project a request names checked against what the key reaches.

A key belongs to a member and is scoped to its own project or to its organisation; a request may name another
project (`org_id`/`project_id`) and then acts on it when the key reaches it and its member has a role there
(403 otherwise). A key may carry its own role, a cap (`Principal.key_role`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace

from memserver.domain.principal import Principal, capped
from memserver.errors import Forbidden
from memserver.services.key_cache import KeyCache
from memserver.storage.db import Database
from memserver.storage.repositories.tenants import TenantRepository

# What `new_key` makes: the prefix and 40 URL-safe characters (a little slack for older or imported keys).
_KEY_SHAPE = re.compile(r"m0-[A-Za-z0-9_-]{20,100}")


def well_formed_key(key: str) -> bool:
    """Whether a key could be one of ours; anything else is refused without a database round trip."""
    return _KEY_SHAPE.fullmatch(key) is not None


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
