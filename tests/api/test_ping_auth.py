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


# -- the key's role, scope and binding (memserver extension: the console hides what a key cannot do) ----------
async def test_ping_reports_the_keys_roles_scope_cap_and_binding(live_server: str, make_org: Any, db: Database) -> None:
    from memserver.services import admin

    org_id, project_id, owner_key = make_org()
    async with db.connect() as conn:
        org = (await conn.execute(text("SELECT name FROM orgs WHERE id = :o"), {"o": org_id})).scalar_one()
    _, reader_key = await admin.create_key(db, org, "main", "r", "ann@example.com", scope="project", role="READER")
    _, capped_key = await admin.create_key(db, org, "main", "c", "owner@example.com", scope="org", role="READER")
    _, bound_key = await admin.create_key(
        db, org, "main", "b", "owner@example.com", binding={"user_id": "alice"}, defaults={"agent_id": "bot"}
    )

    def ping(key: str, **params: str) -> dict[str, Any]:
        r = httpx.get(f"{live_server}/v1/ping/", headers={"Authorization": f"Token {key}"}, params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["status"] == "ok"
        assert body["project_id"] == project_id
        assert body["org_id"] == org_id
        return body

    owner = ping(owner_key)
    assert {k: owner[k] for k in ("role", "org_role", "key_scope", "key_role")} == {
        "role": "OWNER",
        "org_role": "OWNER",
        "key_scope": "org",
        "key_role": None,
    }
    uuid.UUID(owner["key_id"])
    # a READER member's project key: READER in the project, READER of the org
    reader = ping(reader_key)
    assert (reader["role"], reader["org_role"], reader["key_scope"], reader["key_role"]) == (
        "READER",
        "READER",
        "project",
        "READER",
    )
    # the OWNER's own key capped to READER acts as a READER everywhere
    capped = ping(capped_key)
    assert (capped["role"], capped["org_role"], capped["key_scope"], capped["key_role"]) == (
        "READER",
        "READER",
        "org",
        "READER",
    )
    assert capped["key_id"] != owner["key_id"]
    bound = ping(bound_key)
    assert (bound["role"], bound["bound_user_id"], bound["default_user_id"], bound["default_agent_id"]) == (
        "OWNER",
        "alice",
        "alice",
        "bot",
    )
    assert "bound_agent_id" not in bound
    # a project the org key names: the role there (the org OWNER owns every project)
    async with httpx.AsyncClient(base_url=live_server) as client:
        r = await client.post(
            f"/api/v1/orgs/organizations/{org_id}/projects/",
            headers={"Authorization": f"Token {owner_key}"},
            json={"name": "second"},
        )
        second = r.json()["project_id"]
        r = await client.get(
            "/v1/ping/", headers={"Authorization": f"Token {capped_key}"}, params={"project_id": second}
        )
    assert r.status_code == 200, r.text
    assert (r.json()["project_id"], r.json()["role"]) == (second, "READER")
