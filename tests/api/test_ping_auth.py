"""GET /v1/ping/ and authentication (contract §1.1, §2.1)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from memserver.storage.db import Database


def test_ping_returns_org_and_project_of_the_key(api: httpx.Client, tenant: tuple[str, str]) -> None:
    r = api.get("/v1/ping/")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["project_id"] == tenant[0]
    uuid.UUID(body["org_id"])
    assert "@" in body["user_email"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Token m0-wrong"}, {"Authorization": "Basic abc"}],
)
def test_missing_or_wrong_key_is_401_json(live_server: str, headers: dict[str, str]) -> None:
    r = httpx.get(f"{live_server}/v1/ping/", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/json")
    assert "Invalid API key" in r.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/ping", "/v1/ping/", "//v1/ping/", "/v1//ping"])
def test_every_spelling_of_a_path_works_without_redirect(live_server: str, tenant: tuple[str, str], path: str) -> None:
    # An absolute URL: httpx would read a relative "//v1/..." as a host name.
    r = httpx.get(live_server + path, headers={"Authorization": f"Token {tenant[1]}"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"


def test_unknown_route_is_json_404(api: httpx.Client) -> None:
    r = api.get("/v1/nothing-here/")
    assert r.status_code == 404
    assert "detail" in r.json()


def test_health_checks_database(live_server: str) -> None:
    r = httpx.get(f"{live_server}/health")
    assert r.status_code == 200
    assert r.json()["database"] == "ok"


def test_openapi_docs_are_served(live_server: str) -> None:
    assert httpx.get(f"{live_server}/docs").status_code == 200
    spec = httpx.get(f"{live_server}/openapi.json").json()
    for path in ("/v3/memories/add", "/v3/memories/search", "/v1/memories/{memory_id}", "/v1/ping"):
        assert path in spec["paths"]


async def test_keys_are_stored_only_as_sha256_hashes(tenant: tuple[str, str], db: Database) -> None:
    """README: keys are stored as SHA-256 hashes. The key's row holds the hash, and no table holds the key."""
    project_id, key = tenant
    async with db.connect() as conn:
        (row,) = (
            await conn.execute(text("SELECT * FROM api_keys WHERE project_id = :p"), {"p": project_id})
        ).mappings()
        assert bytes(row["key_hash"]) == hashlib.sha256(key.encode()).digest()
        assert key.startswith(row["key_prefix"])
        assert len(row["key_prefix"]) <= 12  # a prefix to recognise the key by, not the key
        secret = key[len(row["key_prefix"]) :]
        tables = (
            await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
        ).scalars()
        tables = list(tables)
        assert {"api_keys", "memories", "memory_history", "events"} <= set(tables)
        dump: list[Any] = []
        for table in tables:
            dump += [v for r in await conn.execute(text(f'SELECT * FROM "{table}"')) for v in r]
    for value in dump:
        if isinstance(value, (bytes, memoryview)):
            assert secret.encode() not in bytes(value)
        else:
            assert secret not in str(value)
