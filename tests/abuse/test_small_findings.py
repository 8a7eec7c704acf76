"""Review finding 6: key floods, provider error text, pagination links, password files, key revocation,
and the compose file's default secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from harness.server import LiveServer, start_server, stop_server
from memserver.config import Settings
from memserver.domain.principal import Principal
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.errors import BadRequest, Conflict
from memserver.services import admin, auth, key_cache
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim
from tests.fakes.openai_server import FakeOpenAI, running


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


# --- provider error text -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI(dim=384)) as f:
        yield f


@pytest.fixture(scope="module")
def openai_server(
    database_url: str, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(
        database_url,
        tmp_path_factory.mktemp("abuse-openai") / "api.log",
        MEMSERVER_EMBEDDER__PROVIDER="openai",
        MEMSERVER_EMBEDDER__BASE_URL=fake.url,
        MEMSERVER_EMBEDDER__API_KEY="sk-test-key-abcd",
        MEMSERVER_EMBEDDER__MODEL="fake-embedding",
    )
    yield server
    stop_server(server)


def test_provider_error_text_does_not_reach_clients(
    openai_server: LiveServer, fake: FakeOpenAI, tenant: tuple[str, str]
) -> None:
    fake.fail_next = 3  # more than the SDK's retries
    with httpx.Client(base_url=openai_server.url, headers={"Authorization": f"Token {tenant[1]}"}, timeout=30) as c:
        r = c.post("/v3/memories/search/", json={"query": "anything", "filters": {"user_id": "u"}})
    fake.fail_next = 0
    assert r.status_code == 502
    assert r.json()["detail"]
    assert "scripted failure" not in r.text
    assert "Error code" not in r.text
    assert "abcd" not in r.text
    assert "scripted failure" in openai_server.log.read_text()  # the operator still sees it


# --- pagination links --------------------------------------------------------------------------
def test_pagination_links_ignore_a_forged_host(api: httpx.Client) -> None:
    add_verbatim(api, "one", "two", user_id="pages")
    r = api.get(
        "/v1/memories/", params={"user_id": "pages", "page": 1, "page_size": 1}, headers={"Host": "evil.example"}
    )
    assert r.status_code == 200, r.text
    nxt = r.json()["next"]
    assert nxt
    assert "evil.example" not in nxt
    assert nxt.startswith("/v1/memories/?")
    r = api.get("/v1/memories/", params={"user_id": "pages", "page": 1, "page_size": 1})
    assert r.json()["next"].startswith(str(api.base_url).rstrip("/") + "/v1/memories/?")  # 127.0.0.1 is allowed


# --- embedded Postgres password files ----------------------------------------------------------
def test_password_files_are_private_from_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no later chmod to rescue them and a permissive umask, the files must be created 0600."""
    base = Path("/tmp") / f"memserver-abuse-pw-{os.getpid()}"
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    old = os.umask(0)
    try:
        pg = EmbeddedPostgres(base, fast=True)
        pg.ensure_initialized()
        for f in (pg.password_file,):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, oct(f.stat().st_mode)
    finally:
        os.umask(old)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_write_private_tightens_an_existing_file(tmp_path: Path) -> None:
    from memserver.embedded_postgres import write_private

    f = tmp_path / "secret"
    f.write_text("old")
    f.chmod(0o644)
    write_private(f, "new")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert f.read_text() == "new"


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


# --- production mode refuses default secrets ------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"database_url": SecretStr("postgresql://memserver:memserver@db:5432/memserver")},
        {"database_url": SecretStr("postgresql://memserver@db:5432/memserver")},
        {"worker": {"runner": "celery"}, "redis": {"url": "redis://redis:6379/0"}},
    ],
)
def test_prod_settings_refuse_default_passwords(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(env="prod", _env_file=None, **fields)  # type: ignore[arg-type, call-arg]
    Settings(env="dev", _env_file=None, **fields)  # type: ignore[arg-type, call-arg]


def test_prod_settings_accept_real_passwords() -> None:
    Settings(
        env="prod",
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr("postgresql://memserver:s3cret-Xy@db:5432/memserver"),
        worker={"runner": "celery"},  # type: ignore[arg-type]
        redis={"url": "redis://:r3dis-pw@redis:6379/0"},  # type: ignore[arg-type]
    )


async def test_provider_error_text_does_not_reach_events(db: Database, tenant: tuple[str, str]) -> None:
    """A job that fails on a provider records a fixed reason: GET /v1/event/{id} is client-visible."""
    from memserver.domain.jobs import JobKind, JobStatus
    from memserver.providers.errors import ProviderError
    from memserver.services import jobs
    from memserver.storage.repositories.jobs import JobRepository

    job_id = uuid.uuid4()
    async with db.connect() as conn:
        await JobRepository(conn).insert_pending(uuid.UUID(tenant[0]), job_id, JobKind.ADD, {"messages": []})

    async def failing(*args: object) -> None:
        raise ProviderError("Error code: 401 - Incorrect API key provided: sk-...abcd")

    ctx = jobs.JobContext(db=db, providers=None, handlers={JobKind.ADD: failing})  # type: ignore[arg-type, dict-item]
    outcome = await jobs.run(ctx, job_id)
    assert outcome.status == JobStatus.FAILED  # a rejected request is not retried
    async with db.connect() as conn:
        error = (await conn.execute(text("SELECT error FROM events WHERE id = :id"), {"id": job_id})).scalar_one()
    assert error
    assert "abcd" not in error
    assert "Incorrect API key" not in error
