"""API keys under abuse: malformed and random keys never reach the database and cannot flood the key cache,
and a key is revoked only by a reference that names exactly one key."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

from memserver.domain.principal import Principal
from memserver.errors import BadRequest, Conflict
from memserver.services import admin, auth, key_cache
from memserver.storage.db import Database


# --- random-key floods ------------------------------------------------------------------------
async def test_malformed_keys_never_reach_the_database() -> None:
    cache = key_cache.KeyCache(ttl_s=60)
    for key in ("x" * 5000, "m0-short", "Token abc", "m0-" + "é" * 40, ""):
        # db=None: any attempt to query would raise
        assert await auth.resolve_key(None, cache, key) is None  # type: ignore[arg-type]
    assert len(cache) == 0


def test_key_cache_evicts_least_recently_used_only() -> None:
    cache = key_cache.KeyCache(ttl_s=60, max_entries=3)
    good = Principal(
        key_id=uuid.uuid4(),
        org_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        org_name="o",
        project_name="p",
        user_email="e",
    )
    cache.put("m0-" + "g" * 40, good)
    for i in range(2):
        cache.put(f"m0-{i:040d}", None)
    assert cache.get("m0-" + "g" * 40) == (True, good)  # used: now the most recent
    for i in range(2, 10):  # a flood of unknown keys
        cache.put(f"m0-{i:040d}", None)
        assert len(cache) <= 3
        cache.get("m0-" + "g" * 40)
    assert cache.get("m0-" + "g" * 40) == (True, good)


def test_a_flood_of_random_keys_is_refused(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as c:
        for i in range(200):
            r = c.get("/v1/ping/", headers={"Authorization": f"Token junk-{i}"})
            assert r.status_code == 401


# --- keys revoke --------------------------------------------------------------------------------
async def _active(db: Database, key_ids: list[uuid.UUID]) -> int:
    async with db.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM api_keys WHERE id = ANY(:ids) AND revoked_at IS NULL"), {"ids": key_ids}
                )
            ).scalar_one()
        )


async def test_revoke_refuses_short_and_ambiguous_references(db: Database) -> None:
    ids = []
    keys = []
    for i in range(2):
        _, key = await admin.create_tenant_with_key(db, "revoke-org", f"revoke-{uuid.uuid4()}-{i}")
        keys.append(key)
        async with db.connect() as conn:
            ids.append(
                (await conn.execute(text("SELECT id FROM api_keys WHERE key_prefix = :p"), {"p": key[:8]})).scalar_one()
            )
    # two keys of different projects whose 8-character prefixes (5 random characters) collide
    async with db.connect() as conn:
        await conn.execute(text("UPDATE api_keys SET key_prefix = 'm0-AAAAA' WHERE id = ANY(:ids)"), {"ids": ids})
    with pytest.raises(BadRequest):
        await admin.revoke_key(db, "m0-AA")
    with pytest.raises(Conflict):
        await admin.revoke_key(db, "m0-AAAAA")
    assert await _active(db, ids) == 2
    revoked = await admin.revoke_key(db, str(ids[0]))  # the full id
    assert revoked.id == ids[0]
    assert await _active(db, ids) == 1
    revoked = await admin.revoke_key(db, keys[1])  # the key itself
    assert revoked.id == ids[1]
    assert await _active(db, ids) == 0
