"""Orgs, projects and API keys (stored as SHA-256 hashes; the plaintext is shown once)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import text

from memserver.domain.principal import Principal, capped
from memserver.domain.rows.tenancy import MemberProjectRow, MemberRefRow, MemberRoleRow, MemberRow, OrgRow, ProjectRow
from memserver.storage.repositories.base import Repository

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
    scope: str = "project"
    bound_user_id: str | None = None
    bound_agent_id: str | None = None
    owner_email: str = ""
    role: str | None = None  # the key's own cap; None: its member's roles


# The member's role in a project: an org OWNER owns every project of the org; others need a project role.
_EFFECTIVE_ROLE = "CASE WHEN m.role = 'OWNER' THEN 'OWNER' ELSE pm.role END"
_PROJECT_COLS = (
    "p.id, p.org_id, p.name, p.description, p.custom_instructions, p.custom_categories, p.settings, "
    "p.created_at, p.updated_at"
)


class TenantRepository(Repository):
    async def _rows(self, sql: str, **params: object) -> list[Any]:
        return list((await self.conn.execute(text(sql), params)).all())

    async def _first(self, sql: str, **params: object) -> Any | None:
        return (await self.conn.execute(text(sql), params)).first()

    # -- keys and principals ------------------------------------------------------------------
    async def principal_for_key(self, key: str) -> Principal | None:
        row = await self._first(
            f"""
            SELECT k.id, k.owner_email, k.scope, k.member_id, m.role AS org_role, {_EFFECTIVE_ROLE} AS role,
                   k.role AS key_role, k.default_user_id, k.default_agent_id, k.bound_user_id, k.bound_agent_id,
                   p.id AS project_id, p.name AS project_name, o.id AS org_id, o.name AS org_name
            FROM api_keys k JOIN projects p ON p.id = k.project_id JOIN orgs o ON o.id = p.org_id
            JOIN members m ON m.id = k.member_id
            LEFT JOIN project_members pm ON pm.member_id = m.id AND pm.project_id = p.id
            WHERE k.key_hash = :h AND k.revoked_at IS NULL
            """,
            h=hash_key(key),
        )
        if row is None:
            return None
        return Principal(
            org_id=row.org_id,
            project_id=row.project_id,
            key_id=row.id,
            user_email=row.owner_email,
            org_name=row.org_name,
            project_name=row.project_name,
            member_id=row.member_id,
            role=capped(row.role, row.key_role),
            org_role=capped(row.org_role, row.key_role) or row.org_role,
            key_scope=row.scope,
            key_project_id=row.project_id,
            default_user_id=row.default_user_id,
            default_agent_id=row.default_agent_id,
            bound_user_id=row.bound_user_id,
            bound_agent_id=row.bound_agent_id,
            key_role=row.key_role,
        )

    async def member_project(self, member_id: uuid.UUID, project_id: uuid.UUID) -> Any | None:
        """The project (id, name, org) with the member's role in it (None: no role); None when not in its org."""
        return await self._first(
            f"""
            SELECT p.id, p.name, o.id AS org_id, o.name AS org_name, {_EFFECTIVE_ROLE} AS role
            FROM members m JOIN projects p ON p.org_id = m.org_id JOIN orgs o ON o.id = p.org_id
            LEFT JOIN project_members pm ON pm.member_id = m.id AND pm.project_id = p.id
            WHERE m.id = :m AND p.id = :p
            """,
            m=member_id,
            p=project_id,
        )

    async def touch_key(self, key_id: uuid.UUID) -> None:
        await self.conn.execute(
            text(
                "UPDATE api_keys SET last_used_at = now() WHERE id = :id "
                "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
            ),
            {"id": key_id},
        )

    async def create_key(
        self,
        project_id: uuid.UUID,
        name: str,
        member_id: uuid.UUID,
        owner_email: str,
        scope: str = "project",
        defaults: dict[str, str | None] | None = None,
        binding: dict[str, str] | None = None,
        role: str | None = None,
    ) -> tuple[uuid.UUID, str]:
        """Create a key of a member, capped at `role` (None: its member's roles); returns (id, plaintext).
        Only the hash is stored."""
        key = new_key()
        key_id = uuid.uuid4()
        await self.conn.execute(
            text(
                "INSERT INTO api_keys (id, project_id, name, key_prefix, key_hash, owner_email, member_id, scope, "
                "default_user_id, default_agent_id, bound_user_id, bound_agent_id, role) "
                "VALUES (:id, :p, :n, :prefix, :h, :e, :m, :s, :du, :da, :bu, :ba, :r)"
            ),
            {
                "id": key_id,
                "p": project_id,
                "n": name,
                "prefix": key[:8],
                "h": hash_key(key),
                "e": owner_email,
                "m": member_id,
                "s": scope,
                "du": (defaults or {}).get("user_id"),
                "da": (defaults or {}).get("agent_id"),
                "bu": (binding or {}).get("user_id"),
                "ba": (binding or {}).get("agent_id"),
                "r": role,
            },
        )
        return key_id, key

    async def list_keys(self, project_id: uuid.UUID | None = None) -> list[KeyInfo]:
        sql = (
            "SELECT k.id, k.name, k.key_prefix, k.project_id, p.name AS project_name, o.name AS org_name, "
            "k.created_at, k.last_used_at, k.revoked_at, k.scope, k.owner_email, k.bound_user_id, k.bound_agent_id, "
            "k.role "
            "FROM api_keys k JOIN projects p ON p.id = k.project_id JOIN orgs o ON o.id = p.org_id"
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

    # -- organisations --------------------------------------------------------------------------
    async def count_orgs(self) -> int:
        return int((await self.conn.execute(text("SELECT count(*) FROM orgs"))).scalar_one())

    async def create_org(self, name: str) -> uuid.UUID:
        org_id = uuid.uuid4()
        await self.conn.execute(text("INSERT INTO orgs (id, name) VALUES (:id, :name)"), {"id": org_id, "name": name})
        return org_id

    async def org_name_taken(self, name: str) -> bool:
        return await self._first("SELECT 1 FROM orgs WHERE name = :n", n=name) is not None

    async def get_org_id(self, name_or_id: str) -> uuid.UUID | None:
        row = await self._first("SELECT id FROM orgs WHERE name = :v OR id::text = :v", v=name_or_id)
        return None if row is None else row.id

    async def get_org(self, org_id: uuid.UUID) -> OrgRow | None:
        row = await self._first("SELECT id, name, created_at, updated_at FROM orgs WHERE id = :id", id=org_id)
        return cast(OrgRow | None, row)

    async def delete_org(self, org_id: uuid.UUID) -> bool:
        res = await self.conn.execute(text("DELETE FROM orgs WHERE id = :id"), {"id": org_id})
        return bool(res.rowcount)

    async def list_orgs(self, member_id: uuid.UUID | None = None) -> list[dict[str, object]]:
        """Every org (operator view), or the org of one member (with its role): a member is one email in one org,
        so the same email in other orgs (other tenants) is never listed."""
        if member_id is None:
            rows = await self._rows(
                "SELECT o.id, o.name, o.created_at, o.updated_at, count(p.id) AS projects, NULL AS role FROM orgs o "
                "LEFT JOIN projects p ON p.org_id = o.id GROUP BY o.id ORDER BY o.created_at"
            )
        else:
            rows = await self._rows(
                "SELECT o.id, o.name, o.created_at, o.updated_at, "
                "(SELECT count(*) FROM projects p WHERE p.org_id = o.id) AS projects, m.role "
                "FROM orgs o JOIN members m ON m.org_id = o.id AND m.id = :m ORDER BY o.created_at",
                m=member_id,
            )
        return [dict(r._mapping) for r in rows]

    # -- members --------------------------------------------------------------------------------
    async def get_member(self, org_id: uuid.UUID, email: str) -> MemberRefRow | None:
        row = await self._first(
            "SELECT id, email, role FROM members WHERE org_id = :o AND email = :e", o=org_id, e=email
        )
        return cast(MemberRefRow | None, row)

    async def add_member(self, org_id: uuid.UUID, email: str, role: str) -> uuid.UUID:
        member_id = uuid.uuid4()
        await self.conn.execute(
            text("INSERT INTO members (id, org_id, email, role) VALUES (:id, :o, :e, :r)"),
            {"id": member_id, "o": org_id, "e": email, "r": role},
        )
        return member_id

    async def set_member_role(self, org_id: uuid.UUID, email: str, role: str) -> bool:
        res = await self.conn.execute(
            text("UPDATE members SET role = :r, updated_at = now() WHERE org_id = :o AND email = :e"),
            {"o": org_id, "e": email, "r": role},
        )
        return bool(res.rowcount)

    async def remove_member(self, org_id: uuid.UUID, email: str) -> bool:
        """Remove a member from the org: its project roles and its keys go with it."""
        res = await self.conn.execute(
            text("DELETE FROM members WHERE org_id = :o AND email = :e"), {"o": org_id, "e": email}
        )
        return bool(res.rowcount)

    async def list_members(self, org_id: uuid.UUID) -> list[MemberRow]:
        return await self._rows(
            "SELECT id, email, role, created_at FROM members WHERE org_id = :o ORDER BY created_at, email", o=org_id
        )

    async def lock_org_owners(self, org_id: uuid.UUID) -> set[uuid.UUID]:
        """The org's OWNERs, locked until the transaction ends (FOR UPDATE, in id order: no deadlock between two
        callers). Two concurrent demotions or removals serialise here; the second, once the first has committed,
        no longer sees the member the first demoted (READ COMMITTED re-checks a locked row's WHERE)."""
        rows = await self._rows(
            "SELECT id FROM members WHERE org_id = :o AND role = 'OWNER' ORDER BY id FOR UPDATE", o=org_id
        )
        return {r.id for r in rows}

    async def list_project_members(self, project_id: uuid.UUID) -> list[MemberRoleRow]:
        """Members with a role in the project: its own members and the org's OWNERs."""
        return await self._rows(
            f"""
            SELECT m.email, {_EFFECTIVE_ROLE} AS role
            FROM projects p JOIN members m ON m.org_id = p.org_id
            LEFT JOIN project_members pm ON pm.member_id = m.id AND pm.project_id = p.id
            WHERE p.id = :p AND (m.role = 'OWNER' OR pm.role IS NOT NULL)
            ORDER BY m.created_at, m.email
            """,
            p=project_id,
        )

    async def set_project_member(self, project_id: uuid.UUID, member_id: uuid.UUID, role: str) -> None:
        await self.conn.execute(
            text(
                "INSERT INTO project_members (project_id, member_id, role) VALUES (:p, :m, :r) "
                "ON CONFLICT (project_id, member_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()"
            ),
            {"p": project_id, "m": member_id, "r": role},
        )

    async def project_role(self, project_id: uuid.UUID, member_id: uuid.UUID) -> str | None:
        row = await self._first(
            "SELECT role FROM project_members WHERE project_id = :p AND member_id = :m", p=project_id, m=member_id
        )
        return None if row is None else str(row.role)

    async def remove_project_member(self, project_id: uuid.UUID, member_id: uuid.UUID) -> bool:
        res = await self.conn.execute(
            text("DELETE FROM project_members WHERE project_id = :p AND member_id = :m"),
            {"p": project_id, "m": member_id},
        )
        return bool(res.rowcount)

    # -- projects -------------------------------------------------------------------------------
    async def create_project(self, org_id: uuid.UUID, name: str, description: str | None = None) -> uuid.UUID:
        project_id = uuid.uuid4()
        await self.conn.execute(
            text("INSERT INTO projects (id, org_id, name, description) VALUES (:id, :org, :name, :d)"),
            {"id": project_id, "org": org_id, "name": name, "d": description},
        )
        return project_id

    async def project_name_taken(self, org_id: uuid.UUID, name: str) -> bool:
        return await self._first("SELECT 1 FROM projects WHERE org_id = :o AND name = :n", o=org_id, n=name) is not None

    async def get_project_id(self, org_id: uuid.UUID | None, name_or_id: str) -> uuid.UUID | None:
        sql = "SELECT id FROM projects WHERE (name = :v OR id::text = :v)"
        params: dict[str, object] = {"v": name_or_id}
        if org_id is not None:
            sql += " AND org_id = :org"
            params["org"] = org_id
        rows = (await self.conn.execute(text(sql), params)).all()
        return rows[0].id if len(rows) == 1 else None

    async def get_project(self, project_id: uuid.UUID) -> ProjectRow | None:
        row = await self._first(f"SELECT {_PROJECT_COLS} FROM projects p WHERE p.id = :id", id=project_id)
        return cast(ProjectRow | None, row)

    async def update_project(self, project_id: uuid.UUID, columns: dict[str, Any], settings: dict[str, Any]) -> None:
        """Set plain columns and merge `settings` into the settings document (one statement)."""
        sets = [f"{c} = :{c}" for c in columns]
        params: dict[str, Any] = {"id": project_id, **columns}
        if "custom_categories" in columns:
            sets[list(columns).index("custom_categories")] = "custom_categories = CAST(:custom_categories AS jsonb)"
            params["custom_categories"] = (
                None if columns["custom_categories"] is None else orjson.dumps(columns["custom_categories"]).decode()
            )
        sets.append("settings = settings || CAST(:settings AS jsonb)")
        params["settings"] = orjson.dumps(settings).decode()
        await self.conn.execute(
            text(f"UPDATE projects SET {', '.join(sets)}, updated_at = now() WHERE id = :id"), params
        )

    async def delete_project(self, project_id: uuid.UUID) -> bool:
        res = await self.conn.execute(text("DELETE FROM projects WHERE id = :id"), {"id": project_id})
        return bool(res.rowcount)

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

    async def member_projects(self, member_id: uuid.UUID) -> list[MemberProjectRow]:
        """The projects of the member's org it has a role in, with that role."""
        return await self._rows(
            f"""
            SELECT {_PROJECT_COLS}, {_EFFECTIVE_ROLE} AS role
            FROM members m JOIN projects p ON p.org_id = m.org_id
            LEFT JOIN project_members pm ON pm.member_id = m.id AND pm.project_id = p.id
            WHERE m.id = :m AND (m.role = 'OWNER' OR pm.role IS NOT NULL)
            ORDER BY p.created_at
            """,
            m=member_id,
        )
