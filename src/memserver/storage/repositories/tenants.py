"""Orgs, projects and API keys (stored as SHA-256 hashes; the plaintext is shown once)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memserver.types import Principal

KEY_PREFIX = "m0-"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass
class KeyInfo:
    id: uuid.UUID
    name: str
    key_prefix: str
    project_id: uuid.UUID
    project_name: str
    org_name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TenantRepository:
    def __init__(self, conn: AsyncConnection):
        self.conn = conn

    async def principal_for_key(self, key: str) -> Principal | None:
        row = (
            await self.conn.execute(
                text(
                    """
                    SELECT k.id, k.owner_email, p.id AS project_id, p.name AS project_name,
                           o.id AS org_id, o.name AS org_name
                    FROM api_keys k JOIN projects p ON p.id = k.project_id JOIN orgs o ON o.id = p.org_id
                    WHERE k.key_hash = :h AND k.revoked_at IS NULL
                    """
                ),
                {"h": hash_key(key)},
            )
        ).first()
        if row is None:
            return None
        return Principal(
            org_id=row.org_id,
            project_id=row.project_id,
            key_id=row.id,
            user_email=row.owner_email,
            org_name=row.org_name,
            project_name=row.project_name,
        )

    async def touch_key(self, key_id: uuid.UUID) -> None:
        await self.conn.execute(
            text(
                "UPDATE api_keys SET last_used_at = now() WHERE id = :id "
                "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
            ),
            {"id": key_id},
        )

    async def count_orgs(self) -> int:
        return int((await self.conn.execute(text("SELECT count(*) FROM orgs"))).scalar_one())

    async def create_org(self, name: str) -> uuid.UUID:
        org_id = uuid.uuid4()
        await self.conn.execute(text("INSERT INTO orgs (id, name) VALUES (:id, :name)"), {"id": org_id, "name": name})
        return org_id

    async def get_org_id(self, name_or_id: str) -> uuid.UUID | None:
        row = (
            await self.conn.execute(text("SELECT id FROM orgs WHERE name = :v OR id::text = :v"), {"v": name_or_id})
        ).first()
        return None if row is None else row.id

    async def list_orgs(self) -> list[dict[str, object]]:
        rows = await self.conn.execute(
            text(
                "SELECT o.id, o.name, o.created_at, count(p.id) AS projects FROM orgs o "
                "LEFT JOIN projects p ON p.org_id = o.id GROUP BY o.id ORDER BY o.created_at"
            )
        )
        return [dict(r._mapping) for r in rows]

    async def create_project(self, org_id: uuid.UUID, name: str, description: str | None = None) -> uuid.UUID:
        project_id = uuid.uuid4()
        await self.conn.execute(
            text("INSERT INTO projects (id, org_id, name, description) VALUES (:id, :org, :name, :d)"),
            {"id": project_id, "org": org_id, "name": name, "d": description},
        )
        return project_id

    async def get_project_id(self, org_id: uuid.UUID | None, name_or_id: str) -> uuid.UUID | None:
        sql = "SELECT id FROM projects WHERE (name = :v OR id::text = :v)"
        params: dict[str, object] = {"v": name_or_id}
        if org_id is not None:
            sql += " AND org_id = :org"
            params["org"] = org_id
        rows = (await self.conn.execute(text(sql), params)).all()
        return rows[0].id if len(rows) == 1 else None

    async def list_projects(self, org_id: uuid.UUID | None = None) -> list[dict[str, object]]:
        sql = (
            "SELECT p.id, p.name, o.name AS org, p.created_at, "
            "(SELECT count(*) FROM api_keys k WHERE k.project_id = p.id AND k.revoked_at IS NULL) AS active_keys "
            "FROM projects p JOIN orgs o ON o.id = p.org_id"
        )
        params: dict[str, object] = {}
        if org_id is not None:
            sql += " WHERE p.org_id = :org"
            params["org"] = org_id
        rows = await self.conn.execute(text(sql + " ORDER BY p.created_at"), params)
        return [dict(r._mapping) for r in rows]

    async def create_key(self, project_id: uuid.UUID, name: str, owner_email: str) -> tuple[uuid.UUID, str]:
        """Create a key; returns (id, plaintext). Only the hash is stored."""
        key = new_key()
        key_id = uuid.uuid4()
        await self.conn.execute(
            text(
                "INSERT INTO api_keys (id, project_id, name, key_prefix, key_hash, owner_email) "
                "VALUES (:id, :p, :n, :prefix, :h, :e)"
            ),
            {
                "id": key_id,
                "p": project_id,
                "n": name,
                "prefix": key[:8],
                "h": hash_key(key),
                "e": owner_email,
            },
        )
        return key_id, key

    async def list_keys(self, project_id: uuid.UUID | None = None) -> list[KeyInfo]:
        sql = (
            "SELECT k.id, k.name, k.key_prefix, k.project_id, p.name AS project_name, o.name AS org_name, "
            "k.created_at, k.last_used_at, k.revoked_at FROM api_keys k JOIN projects p ON p.id = k.project_id "
            "JOIN orgs o ON o.id = p.org_id"
        )
        params: dict[str, object] = {}
        if project_id is not None:
            sql += " WHERE k.project_id = :p"
            params["p"] = project_id
        rows = await self.conn.execute(text(sql + " ORDER BY k.created_at"), params)
        return [KeyInfo(**r._mapping) for r in rows]

    async def active_keys_matching(self, ref: str) -> list[KeyInfo]:
        """Active keys whose id is `ref`, whose plaintext is `ref`, or whose id or key starts with `ref`."""
        pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self.conn.execute(
            text(
                "SELECT k.id, k.name, k.key_prefix, k.project_id, p.name AS project_name, o.name AS org_name, "
                "k.created_at, k.last_used_at, k.revoked_at FROM api_keys k JOIN projects p ON p.id = k.project_id "
                "JOIN orgs o ON o.id = p.org_id WHERE k.revoked_at IS NULL AND (k.id::text LIKE :pattern "
                "OR k.key_hash = :hash OR (length(:ref) <= length(k.key_prefix) AND k.key_prefix LIKE :pattern)) "
                "ORDER BY k.created_at"
            ),
            {"pattern": pattern, "hash": hash_key(ref), "ref": ref},
        )
        found = [KeyInfo(**r._mapping) for r in rows]
        exact = [k for k in found if str(k.id) == ref]
        return exact or found

    async def revoke_key_id(self, key_id: uuid.UUID) -> None:
        await self.conn.execute(
            text("UPDATE api_keys SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL"), {"id": key_id}
        )
