"""With Celery, webhook deliveries travel on a queue of their own: a worker started with `--queues jobs` runs
adds and never a delivery (so receivers that are slow to answer cannot hold its processes), and a worker
with `--queues webhooks` sends them. Real Redis, real `memserver worker` processes, a receiver on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.server import served, server_env
from memserver.embedded_postgres import EmbeddedPostgres
from tests.abuse.hostile_http import answer, serving, silent
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


def start_worker(
    db_url: str, redis: h.Redis, env: dict[str, str], log: Path, queues: str, concurrency: int = 1
) -> subprocess.Popen[bytes]:
    full = server_env(db_url, 0, MEMSERVER_WORKER__RUNNER="celery", MEMSERVER_REDIS__URL=redis.url, **env)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "memserver.cli", "worker", "--concurrency", str(concurrency), "--queues", queues],
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


def test_silent_receivers_of_one_project_hold_no_celery_worker_another_projects_delivery_needs(
    pg: EmbeddedPostgres, redis: h.Redis, stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Celery, 3 delivery processes: project A's 12 deliveries go to a receiver that never answers (each attempt
    held 30 s), then project B's one delivery is queued behind them in Redis. A holds at most
    `MAX_RUNNING_PER_PROJECT` (2) of the processes, so B's is sent while every one of A's is still held."""
    db_url = h.fresh_database(pg, "celery_fair_hooks")
    a_project, a_key = h.make_tenant(db_url)
    b_project, b_key = h.make_tenant(db_url)
    env = {**stack_env, "MEMSERVER_WEBHOOKS__TIMEOUT_S": "30", "MEMSERVER_WEBHOOKS__MAX_ATTEMPTS": "1"}
    with served(
        db_url, tmp_path / "api.log", MEMSERVER_WORKER__RUNNER="celery", MEMSERVER_REDIS__URL=redis.url, **env
    ) as api:
        worker = start_worker(db_url, redis, env, tmp_path / "hooks.log", "webhooks", concurrency=3)
        try:
            with (
                serving(silent()) as stuck,
                serving(answer(200, b"{}")) as fine,
                token_client(api.url, a_key) as a,
                token_client(api.url, b_key) as b,
            ):

                def hook(client: httpx.Client, project: str, url: str) -> str:
                    r = client.post(
                        f"/api/v1/webhooks/projects/{project}/",
                        json={"url": url, "name": "r", "event_types": ["memory_add"]},
                    )
                    assert r.status_code == 201, r.text
                    return str(r.json()["webhook_id"])

                def add(client: httpx.Client, text: str) -> None:
                    body = {"messages": [{"role": "user", "content": text}], "user_id": "u", "infer": False}
                    assert client.post("/v3/memories/add/", json=body).status_code == 200

                for i in range(12):
                    hook(a, a_project, stuck.url(f"/hook{i}"))
                add(a, "a fact for twelve receivers")
                deadline = time.monotonic() + 60  # the worker starts, then A's deliveries take what they may
                while len(stuck.requests) < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert len(stuck.requests) >= 2, (tmp_path / "hooks.log").read_text()[-3000:]
                hook(b, b_project, fine.url("/hook"))
                started = time.monotonic()
                add(b, "b fact")
                while not fine.requests and time.monotonic() - started < 25:
                    time.sleep(0.1)
                assert len(fine.requests) == 1, (tmp_path / "hooks.log").read_text()[-3000:]
                assert time.monotonic() - started < 25  # before any of A's attempts (30 s) gave up
                assert len(stuck.requests) == 2  # A never held more than its two processes
        finally:
            h.stop_worker(worker)
