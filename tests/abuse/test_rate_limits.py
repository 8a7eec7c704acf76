"""Rate limits per key and per project: 429 with Retry-After and X-RateLimit-* headers, counted in-process
or shared by several API processes through Redis."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.server import LiveServer, free_port, served
from memserver.services import admin
from memserver.storage.db import Database

LIMIT = 5
# A long window: the test's requests all fall in one window unless it started right at a boundary,
# which `_fresh_window` avoids (no timing threshold: it only waits when the boundary is close).
WINDOW = "3600"


def _fresh_window() -> None:
    left = 3600 - time.time() % 3600
    if left < 30:
        time.sleep(left + 0.5)


def _ping(url: str, key: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/ping/", headers={"Authorization": f"Token {key}"}, timeout=30)


@pytest.fixture(scope="module")
def limited(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with served(
        database_url,
        tmp_path_factory.mktemp("ratelimit") / "api.log",
        MEMSERVER_RATELIMIT__PER_KEY=str(LIMIT),
        MEMSERVER_RATELIMIT__PER_PROJECT=str(2 * LIMIT + 1),
        MEMSERVER_RATELIMIT__WINDOW_S=WINDOW,
    ) as server:
        yield server


def test_per_key_limit_answers_429_with_headers(limited: LiveServer, new_api_key: Callable[[], str]) -> None:
    _fresh_window()
    key = new_api_key()
    for i in range(LIMIT):
        r = _ping(limited.url, key)
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit"] == str(LIMIT)
        assert r.headers["x-ratelimit-remaining"] == str(LIMIT - 1 - i)
        assert 0 < int(r.headers["x-ratelimit-reset"]) <= 3600
    r = _ping(limited.url, key)
    assert r.status_code == 429
    assert r.json()["detail"].startswith("Rate limit exceeded")
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(r.headers["retry-after"]) <= 3600
    # other keys are not affected
    assert _ping(limited.url, new_api_key()).status_code == 200


async def test_per_project_limit_counts_every_key_of_the_project(limited: LiveServer, database_url: str) -> None:
    _fresh_window()
    db = Database(database_url)
    try:
        org, project = "rl-org", f"rl-{time.time_ns()}"
        await admin.create_tenant_with_key(db, org, project)
        keys = [(await admin.create_key(db, org, project, f"k{i}", "e@x"))[1] for i in range(3)]
    finally:
        await db.dispose()
    statuses = [_ping(limited.url, keys[i % 3]).status_code for i in range(2 * LIMIT + 1)]
    assert statuses == [200] * (2 * LIMIT + 1)  # no key is over 5, the project is at 11
    r = _ping(limited.url, keys[2])
    assert r.status_code == 429
    assert r.headers["x-ratelimit-limit"] == str(2 * LIMIT + 1)


def test_no_limit_no_headers(api: httpx.Client) -> None:
    r = api.get("/v1/ping/")
    assert r.status_code == 200
    assert "x-ratelimit-limit" not in r.headers


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (make system-deps)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_redis_shares_the_count_between_replicas(
    database_url: str, redis_url: str, new_api_key: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {
        "MEMSERVER_RATELIMIT__PER_KEY": str(LIMIT),
        "MEMSERVER_RATELIMIT__WINDOW_S": WINDOW,
        "MEMSERVER_RATELIMIT__BACKEND": "redis",
        "MEMSERVER_REDIS__URL": redis_url,
    }
    logs = tmp_path_factory.mktemp("ratelimit-redis")
    with served(database_url, logs / "a.log", **env) as a, served(database_url, logs / "b.log", **env) as b:
        _fresh_window()
        key = new_api_key()
        statuses = [_ping((a, b)[i % 2].url, key).status_code for i in range(LIMIT)]
        assert statuses == [200] * LIMIT
        assert _ping(a.url, key).status_code == 429  # each replica saw fewer than LIMIT requests
        assert _ping(b.url, key).status_code == 429
