"""API keys as an organisation manages them: listed (never the key or its hash), read and revoked by id, every
statement scoped to the organisation. Creating one is `TenantRepository.create_key`."""

from __future__ import annotations

import uuid
from typing import cast

from sqlalchemy import text

from memserver.domain.rows.tenancy import KeyRow
from memserver.storage.repositories.base import Repository

_ITEM = """
    SELECT k.id AS key_id, k.name, k.key_prefix AS prefix, k.project_id, p.name AS project_name,
           k.owner_email AS email, k.scope, k.role, k.bound_user_id, k.bound_agent_id, k.default_user_id,
           k.default_agent_id, k.created_at, k.last_used_at, k.revoked_at
    FROM api_keys k JOIN projects p ON p.id = k.project_id
    WHERE p.org_id = :org
"""
# Keys that can manage their organisation over HTTP: org-scoped, of an org OWNER, not capped to READER.
_MANAGING = """
    SELECT k.id FROM api_keys k JOIN members m ON m.id = k.member_id
    WHERE m.org_id = :org AND m.role = 'OWNER' AND k.scope = 'org' AND k.revoked_at IS NULL
      AND k.role IS DISTINCT FROM 'READER'
"""


class KeyRepository(Repository):
    async def of_org(self, org_id: uuid.UUID, *, project_id: uuid.UUID | None, include_revoked: bool) -> list[KeyRow]:
        sql = _ITEM
        params: dict[str, object] = {"org": org_id}
        if project_id is not None:
            sql += " AND k.project_id = :p"
            params["p"] = project_id
        if not include_revoked:
            sql += " AND k.revoked_at IS NULL"
        rows = await self.conn.execute(text(sql + " ORDER BY k.created_at, k.id"), params)
        return cast(list[KeyRow], list(rows))

    async def get(self, org_id: uuid.UUID, key_id: uuid.UUID) -> KeyRow | None:
        row = (await self.conn.execute(text(_ITEM + " AND k.id = :id"), {"org": org_id, "id": key_id})).first()
        return cast(KeyRow | None, row)

    async def managing(self, org_id: uuid.UUID) -> list[uuid.UUID]:
        """The active keys that can manage the org (run after `TenantRepository.lock_org_owners`: two
        revocations of its last two then take turns)."""
        return [r.id for r in await self.conn.execute(text(_MANAGING), {"org": org_id})]

    async def revoke(self, org_id: uuid.UUID, key_id: uuid.UUID) -> bool:
        """Revoke an active key of the org; False when there is none (unknown, another org's, revoked)."""
        row = (
            await self.conn.execute(
                text(
                    "UPDATE api_keys k SET revoked_at = now() FROM projects p "
                    "WHERE k.id = :id AND p.id = k.project_id AND p.org_id = :org AND k.revoked_at IS NULL "
                    "RETURNING k.id"
                ),
                {"org": org_id, "id": key_id},
            )
        ).first()
        return row is not None
