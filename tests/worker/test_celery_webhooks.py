"""With Celery, webhook deliveries travel on a queue of their own: a worker started with `--queues jobs` runs
adds and never a delivery (so receivers that are slow to answer cannot hold its processes), and a worker
with `--queues webhooks` sends them. Real Redis, real `memserver worker` processes, a receiver on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.server import served, server_env
from memserver.embedded_postgres import EmbeddedPostgres
from tests.abuse.hostile_http import answer, serving
from tests.api.helpers import token_client
from tests.fakes.openai_server import FakeOpenAI, running
from tests.worker import jobs_harness as h


@pytest.fixture(scope="module")
def stack_env() -> Iterator[dict[str, str]]:
    with running(FakeOpenAI(echo=True)) as fake:
        yield {
            "MEMSERVER_EMBEDDER__PROVIDER": "openai",
            "MEMSERVER_EMBEDDER__BASE_URL": fake.url,
            "MEMSERVER_EMBEDDER__API_KEY": "sk-test",
            "MEMSERVER_LLM__BASE_URL": fake.url,
            "MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS": "true",
            "MEMSERVER_WORKER__POLL_INTERVAL_S": "0.3",
        }


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[h.Redis]:
    r = h.Redis(tmp_path_factory.mktemp("redis"))
    r.start()
    yield r
    r.stop()


def start_worker(db_url: str, redis: h.Redis, env: dict[str, str], log: Path, queues: str) -> subprocess.Popen[bytes]:
    full = server_env(db_url, 0, MEMSERVER_WORKER__RUNNER="celery", MEMSERVER_REDIS__URL=redis.url, **env)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "memserver.cli", "worker", "--concurrency", "1", "--queues", queues],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_jobs_worker_runs_adds_and_leaves_deliveries_to_a_webhooks_worker(
    pg: EmbeddedPostgres, redis: h.Redis, stack_env: dict[str, str], tmp_path: Path
) -> None:
    db_url = h.fresh_database(pg, "celery_hooks")
    project_id, key = h.make_tenant(db_url)
    with served(
        db_url, tmp_path / "api.log", MEMSERVER_WORKER__RUNNER="celery", MEMSERVER_REDIS__URL=redis.url, **stack_env
    ) as api:
        jobs_worker = start_worker(db_url, redis, stack_env, tmp_path / "jobs.log", "jobs")
        hooks_worker = None
        try:
            with serving(answer(200, b"{}")) as receiver, token_client(api.url, key) as client:
                r = client.post(
                    f"/api/v1/webhooks/projects/{project_id}/",
                    json={"url": receiver.url("/hook"), "name": "r", "event_types": ["memory_add"]},
                )
                assert r.status_code == 201, r.text
                r = client.post(
                    "/v3/memories/add/", json={"messages": [{"role": "user", "content": "I like tea"}], "user_id": "u"}
                )
                assert r.status_code == 200, r.text
                event_id = r.json()["event_id"]
                deadline = time.monotonic() + 60
                status = ""
                while time.monotonic() < deadline:
                    status = client.get(f"/v1/event/{event_id}/").json()["status"]
                    if status in ("SUCCEEDED", "FAILED"):
                        break
                    time.sleep(0.2)
                assert status == "SUCCEEDED", (tmp_path / "jobs.log").read_text()[-3000:]
                time.sleep(2.0)  # the delivery written with the memory waits on its own queue
                assert receiver.requests == []
                hooks_worker = start_worker(db_url, redis, stack_env, tmp_path / "hooks.log", "webhooks")
                deadline = time.monotonic() + 60
                while not receiver.requests and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert len(receiver.requests) == 1, (tmp_path / "hooks.log").read_text()[-3000:]
        finally:
            for proc in (jobs_worker, hooks_worker):
                if proc is not None:
                    h.stop_worker(proc)


def test_the_worker_command_names_its_queues() -> None:
    from memserver.cli import build_parser
    from memserver.worker.celery_app import QUEUES

    parser = build_parser()
    assert parser.parse_args(["worker"]).queues == ["jobs", "webhooks"]
    assert parser.parse_args(["worker", "--queues", "webhooks"]).queues == ["webhooks"]
    assert set(QUEUES) == {"jobs", "webhooks"}
    with pytest.raises(SystemExit):
        parser.parse_args(["worker", "--queues", "jobs,mail"])
