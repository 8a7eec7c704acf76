"""Observability: Prometheus metrics at /metrics, JSON logs carrying the request id, and /ready failing
(503 JSON) while the database or the embedder is unavailable (/health unchanged)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.server import LiveServer
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage import migrate
from tests.fakes.openai_server import FakeOpenAI, fake_embedder_server


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, FakeOpenAI]]:
    """A memserver logging JSON at info level, and the fake embedder it calls."""
    log = tmp_path_factory.mktemp("observability") / "api.log"
    with fake_embedder_server(database_url, log, MEMSERVER_LOG_FORMAT="json", MEMSERVER_LOG_LEVEL="info") as pair:
        yield pair


@pytest.fixture(scope="module")
def server(stack: tuple[LiveServer, FakeOpenAI]) -> LiveServer:
    return stack[0]


@pytest.fixture(scope="module")
def fake(stack: tuple[LiveServer, FakeOpenAI]) -> FakeOpenAI:
    return stack[1]


def test_metrics(server: LiveServer, fake: FakeOpenAI, tenant: tuple[str, str]) -> None:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {tenant[1]}"}, timeout=30) as c:
        assert c.get("/v1/ping/").status_code == 200
        assert c.post("/v3/memories/search/", json={"query": "q", "filters": {"user_id": "u"}}).status_code == 200
        fake.fail_next = 3
        assert c.post("/v3/memories/search/", json={"query": "q2", "filters": {"user_id": "u"}}).status_code == 502
        fake.fail_next = 0
        r = c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'memserver_http_request_duration_seconds_count{method="GET",route="/v1/ping",status="200"}' in text
    assert 'route="/v3/memories/search",status="502"' in text
    assert (
        'memserver_provider_duration_seconds_count{kind="embedder",outcome="ok",provider="openai:fake-embedding"}'
        in text
    )
    assert (
        'memserver_provider_errors_total{code="provider_error",kind="embedder",provider="openai:fake-embedding"}'
        in text
    )
    assert "memserver_jobs_pending " in text
    assert "memserver_jobs_oldest_pending_age_seconds " in text
    assert 'memserver_db_pool_connections{pool="main",state="checked_out"}' in text


def test_json_logs_carry_the_request_id(server: LiveServer, fake: FakeOpenAI, tenant: tuple[str, str]) -> None:
    fake.fail_next = 3
    r = httpx.post(
        f"{server.url}/v3/memories/search/",
        json={"query": "logged", "filters": {"user_id": "u"}},
        headers={"Authorization": f"Token {tenant[1]}", "X-Request-ID": "req-abc-123"},
        timeout=30,
    )
    fake.fail_next = 0
    assert r.status_code == 502
    assert r.headers["x-request-id"] == "req-abc-123"
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    mine = [rec for rec in lines if rec.get("request_id") == "req-abc-123"]
    assert mine, server.log.read_text()[-2000:]
    assert {"ts", "level", "logger", "message"} <= mine[0].keys()
    assert any("provider failure" in rec["message"] for rec in mine)


def test_ready_fails_while_the_embedder_is_down(server: LiveServer, fake: FakeOpenAI) -> None:
    fake.fail_next = 100
    try:
        r = httpx.get(f"{server.url}/ready", timeout=30)
    finally:
        fake.fail_next = 0
    assert r.status_code == 503
    assert r.json()["embedder"].startswith("error")
    assert r.json()["database"] == "ok"
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200  # liveness is not readiness
    r = httpx.get(f"{server.url}/ready", timeout=30)
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "database": "ok", "embedder": "ok"}


def test_ready_fails_while_the_database_is_down(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = Path("/tmp") / f"memserver-abuse-ready-{os.getpid()}"
    pg = EmbeddedPostgres(base, fast=True)
    pg.start()
    try:
        migrate.upgrade(pg.url(), 384)
        with fake_embedder_server(pg.url(), tmp_path_factory.mktemp("ready-db") / "api.log") as (server, _):
            assert httpx.get(f"{server.url}/ready", timeout=30).status_code == 200
            pg.stop()
            r = httpx.get(f"{server.url}/ready", timeout=30)
            assert r.status_code == 503
            assert r.json()["database"].startswith("error")
            assert r.headers["content-type"].startswith("application/json")
    finally:
        pg.stop()
        subprocess.run(["rm", "-rf", str(base)], check=False)
