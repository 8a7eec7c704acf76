"""Migration 0008_platform: existing keys become project-scoped keys of OWNER members (nobody loses or gains
access), and the revision downgrades and upgrades again."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from alembic import command
from sqlalchemy import text

from harness.postgres import PostgresRun
from memserver.storage.db import Database
from memserver.storage.migrate import alembic_config
from memserver.storage.repositories.tenants import TenantRepository, hash_key


def _in_thread(fn: Any) -> Any:
    """Alembic runs its own event loop: keep it off the test's."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["v"] = fn()
        except BaseException as exc:
            out["e"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out.get("v")


def test_existing_keys_keep_their_access_and_the_revision_reverses(pg_run: PostgresRun, database_url: str) -> None:
    name = f"mig_{uuid.uuid4().hex[:8]}"

    async def sql(url: str, *statements: str, **params: Any) -> list[Any]:
        db = Database(url)
        try:
            async with db.connect() as conn:
                rows: list[Any] = []
                for s in statements:
                    res = await conn.execute(text(s), params)
                    rows = list(res.all()) if res.returns_rows else []
                return rows
        finally:
            await db.dispose()

    asyncio.run(sql(database_url, f"CREATE DATABASE {name}"))
    url = pg_run.pg.url(name)
    cfg = alembic_config(url, 384)
    _in_thread(lambda: command.upgrade(cfg, "0005_history_event"))
    org, project, key_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    asyncio.run(
        sql(
            url,
            "INSERT INTO orgs (id, name) VALUES (:o, 'old')",
            "INSERT INTO projects (id, org_id, name) VALUES (:p, :o, 'old')",
            "INSERT INTO api_keys (id, project_id, name, key_prefix, key_hash, owner_email) "
            "VALUES (:k, :p, 'k', 'm0-xxxxx', :h, 'old@example.com')",
            o=org,
            p=project,
            k=key_id,
            h=hash_key("m0-the-old-key"),
        )
    )
    _in_thread(lambda: command.upgrade(cfg, "head"))

    async def principal() -> Any:
        db = Database(url)
        try:
            async with db.connect() as conn:
                return await TenantRepository(conn).principal_for_key("m0-the-old-key")
        finally:
            await db.dispose()

    p = asyncio.run(principal())
    assert (p.project_id, p.role, p.org_role, p.key_scope) == (project, "OWNER", "OWNER", "project")
    _in_thread(lambda: command.downgrade(cfg, "0005_history_event"))
    cols = asyncio.run(sql(url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'api_keys'"))
    assert "member_id" not in {c.column_name for c in cols}
    _in_thread(lambda: command.upgrade(cfg, "head"))
    assert asyncio.run(principal()).role == "OWNER"
    asyncio.run(sql(database_url, f"DROP DATABASE {name} WITH (FORCE)"))
