"""Hostile webhook receivers cannot exhaust the server: real receivers on 127.0.0.1 that never answer, drip
one byte at a time, or send far more than anyone should read; a live memserver (in-process runner, scripted
LLM) delivers to them. Also: the per-project webhook cap, counted under concurrent creates."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, served
from memserver.embedded_postgres import EmbeddedPostgres
from tests.abuse.hostile_http import answer, drip, flood, serving, silent
from tests.api.helpers import token_client
from tests.fakes.openai_server import FakeOpenAI, running
from tests.worker.jobs_harness import fresh_database, make_tenant


@pytest.fixture(scope="module")
def llm_env() -> Iterator[dict[str, str]]:
    with running(FakeOpenAI(echo=True)) as fake:
        yield {"MEMSERVER_LLM__BASE_URL": fake.url, "MEMSERVER_LLM__API_KEY": "test"}


@pytest.fixture(scope="module")
def receivers_server(
    pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory, llm_env: dict[str, str]
) -> Iterator[tuple[LiveServer, str]]:
    url = fresh_database(pg, "receivers")
    with served(
        url,
        tmp_path_factory.mktemp("receivers") / "api.log",
        MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS="true",
        MEMSERVER_WEBHOOKS__TIMEOUT_S="1.5",
        MEMSERVER_WEBHOOKS__MAX_ATTEMPTS="3",
        MEMSERVER_WEBHOOKS__RETRY_BACKOFF_S="0.2",
        MEMSERVER_WEBHOOKS__MAX_PER_PROJECT="3",
        MEMSERVER_WORKER__POLL_INTERVAL_S="0.2",
        **llm_env,
    ) as server:
        yield server, url


def hook(api: httpx.Client, project_id: str, url: str) -> dict[str, Any]:
    r = api.post(
        f"/api/v1/webhooks/projects/{project_id}/", json={"url": url, "name": "r", "event_types": ["memory_add"]}
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def add_verbatim(api: httpx.Client, text: str) -> None:
    r = api.post(
        "/v3/memories/add/", json={"messages": [{"role": "user", "content": text}], "user_id": "u", "infer": False}
    )
    assert r.status_code == 200, r.text


def wait_delivery(api: httpx.Client, webhook_id: str, timeout: float) -> dict[str, Any]:
    """The webhook's one delivery, once it is SUCCEEDED or FAILED (or whatever it is at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        r = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries/")
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        if (results and results[0]["status"] in ("SUCCEEDED", "FAILED")) or time.monotonic() > deadline:
            assert results, "no delivery was written"
            return results[0]  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_a_dripping_receiver_is_cut_off_at_the_deadline_and_the_delivery_gives_up(
    receivers_server: tuple[LiveServer, str],
) -> None:
    """One byte every 0.1 s never trips a per-read timeout: each attempt still ends at its 1.5 s deadline, and
    after MAX_ATTEMPTS (3) the delivery is FAILED with every attempt listed."""
    server, url = receivers_server
    project_id, key = make_tenant(url)
    with serving(drip(0.1, declared=1000)) as receiver, token_client(server.url, key) as api:
        created = hook(api, project_id, receiver.url("/hook"))
        t0 = time.monotonic()
        add_verbatim(api, "drip target")
        d = wait_delivery(api, created["webhook_id"], timeout=30)
        elapsed = time.monotonic() - t0
    assert d["status"] == "FAILED", d
    assert d["attempts"] == 3
    assert len(d["history"]) == 3
    assert [a["attempt"] for a in d["history"]] == [1, 2, 3]
    for attempt in d["history"]:
        assert attempt["response_status"] is None
        assert "timed out after 1.5 s" in attempt["error"]
    assert "gave up after 3 attempts" in d["last_error"]
    assert elapsed < 15  # 3 x 1.5 s + backoff, not the drip's 100 s
    assert len(receiver.requests) == 3


def test_giving_up_after_max_attempts_lists_every_attempt(receivers_server: tuple[LiveServer, str]) -> None:
    server, url = receivers_server
    project_id, key = make_tenant(url)
    with serving(answer(500, b"no")) as receiver, token_client(server.url, key) as api:
        created = hook(api, project_id, receiver.url("/hook"))
        add_verbatim(api, "always failing receiver")
        d = wait_delivery(api, created["webhook_id"], timeout=30)
    assert d["status"] == "FAILED", d
    assert d["attempts"] == 3
    assert [(a["attempt"], a["response_status"]) for a in d["history"]] == [(1, 500), (2, 500), (3, 500)]
    assert d["last_error"] == "receiver answered HTTP 500 (gave up after 3 attempts)"
    assert d["next_attempt_at"] is None
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert len(bodies) == 3
    assert {b["event_details"]["data"]["memory"] for b in bodies} == {"always failing receiver"}
    assert [r.headers["x-memserver-attempt"] for r in receiver.requests] == ["1", "2", "3"]


def test_an_endless_answer_is_not_read(receivers_server: tuple[LiveServer, str]) -> None:
    """50 MB (gzip-labelled) after a 200: the delivery succeeds on the status, having read a few KB."""
    server, url = receivers_server
    project_id, key = make_tenant(url)
    with (
        serving(flood(50_000_000, headers={"Content-Encoding": "gzip"})) as receiver,
        token_client(server.url, key) as api,
    ):
        created = hook(api, project_id, receiver.url("/hook"))
        add_verbatim(api, "flooding receiver")
        d = wait_delivery(api, created["webhook_id"], timeout=30)
        time.sleep(0.5)
        sent = receiver.sent
    assert d["status"] == "SUCCEEDED", d
    assert d["response_status"] == 200
    assert sent < 10_000_000  # the rest was refused by a closed connection


def test_webhooks_per_project_are_capped_even_under_concurrent_creates(
    receivers_server: tuple[LiveServer, str],
) -> None:
    server, url = receivers_server
    project_id, key = make_tenant(url)
    path = f"/api/v1/webhooks/projects/{project_id}/"
    body = {"url": "https://example.com/hook", "name": "n", "event_types": ["memory_add"]}

    def create(_: int) -> httpx.Response:
        with token_client(server.url, key) as api:
            return api.post(path, json=body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(8)))
    assert sorted(r.status_code for r in answers) == [201] * 3 + [400] * 5
    refused = next(r for r in answers if r.status_code == 400)
    assert "3 webhooks" in refused.json()["detail"]
    with token_client(server.url, key) as api:
        assert len(api.get(path).json()) == 3
        # deleting one makes room again
        first = api.get(path).json()[0]["webhook_id"]
        assert api.delete(f"/api/v1/webhooks/{first}/").status_code == 200
        assert api.post(path, json=body).status_code == 201
    # another project is not affected by this one's count
    other_project, other_key = make_tenant(url)
    with token_client(server.url, other_key) as api:
        assert api.post(f"/api/v1/webhooks/projects/{other_project}/", json=body).status_code == 201


# ----------------------------------------------------------------------------------------------
# deliveries have their own slots: receivers that never answer do not delay another tenant's adds
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slots_server(
    pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory, llm_env: dict[str, str]
) -> Iterator[tuple[LiveServer, str]]:
    url = fresh_database(pg, "slots")
    with served(
        url,
        tmp_path_factory.mktemp("slots") / "api.log",
        MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS="true",
        MEMSERVER_WEBHOOKS__TIMEOUT_S="30",
        MEMSERVER_WEBHOOKS__MAX_ATTEMPTS="1",
        MEMSERVER_WEBHOOKS__CONCURRENCY="2",
        MEMSERVER_WORKER__INPROCESS_CONCURRENCY="2",
        MEMSERVER_WORKER__POLL_INTERVAL_S="0.2",
        **llm_env,
    ) as server:
        yield server, url


def test_silent_receivers_do_not_delay_another_tenants_async_add(
    slots_server: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, url = slots_server
    a_project, a_key = make_tenant(url)
    _, b_key = make_tenant(url)
    with serving(silent()) as receiver, token_client(server.url, a_key) as a:
        hook(a, a_project, receiver.url("/hook"))
        for i in range(6):  # six deliveries, each held 30 s by a receiver that never answers
            add_verbatim(a, f"fact number {i}")
        deadline = time.monotonic() + 10
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(receiver.requests) >= 2  # the delivery slots are taken
        with token_client(server.url, b_key) as b:
            t0 = time.monotonic()
            r = b.post(
                "/v3/memories/add/", json={"messages": [{"role": "user", "content": "I like tea"}], "user_id": "b"}
            )
            assert r.status_code == 200, r.text
            event_id = r.json()["event_id"]
            status = ""
            while time.monotonic() - t0 < 25:
                status = b.get(f"/v1/event/{event_id}/").json()["status"]
                if status not in ("PENDING", "RUNNING"):
                    break
                time.sleep(0.1)
            elapsed = time.monotonic() - t0
        assert status == "SUCCEEDED"
        assert elapsed < 12, f"the add waited {elapsed:.1f} s behind webhook deliveries"
        assert len(receiver.requests) <= 2  # deliveries never ran beyond their own slots


# ----------------------------------------------------------------------------------------------
# deliveries are scheduled fairly across projects: one project's silent receivers do not delay another's
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fair_server(
    pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory, llm_env: dict[str, str]
) -> Iterator[tuple[LiveServer, str]]:
    url = fresh_database(pg, "fair_hooks")
    with served(
        url,
        tmp_path_factory.mktemp("fair_hooks") / "api.log",
        MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS="true",
        MEMSERVER_WEBHOOKS__TIMEOUT_S="30",
        MEMSERVER_WEBHOOKS__MAX_ATTEMPTS="1",
        MEMSERVER_WORKER__POLL_INTERVAL_S="0.2",
        **llm_env,
    ) as server:  # the default delivery slots (4) and per-project share
        yield server, url


def test_silent_receivers_of_one_project_do_not_delay_another_projects_deliveries(
    fair_server: tuple[LiveServer, str],
) -> None:
    """Project A has 12 webhooks at a receiver that never answers (each attempt held 30 s); one add of A queues
    12 deliveries. Project B's delivery, queued after them, is sent while every one of A's is still held: A
    never holds all the delivery slots."""
    server, url = fair_server
    a_project, a_key = make_tenant(url)
    b_project, b_key = make_tenant(url)
    with (
        serving(silent()) as stuck,
        serving(answer(200)) as fine,
        token_client(server.url, a_key) as a,
        token_client(server.url, b_key) as b,
    ):
        a_hooks = [hook(a, a_project, stuck.url(f"/hook{i}"))["webhook_id"] for i in range(12)]
        add_verbatim(a, "a fact for twelve receivers")
        deadline = time.monotonic() + 10
        while len(stuck.requests) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # A's deliveries take every slot they may
        assert stuck.requests, "A's deliveries never started"
        b_hook = hook(b, b_project, fine.url("/hook"))["webhook_id"]
        add_verbatim(b, "b fact")
        d = wait_delivery(b, b_hook, timeout=25)
        assert d["status"] == "SUCCEEDED", d
        held = [wait_delivery(a, h, timeout=0)["status"] for h in a_hooks]
        # B was sent while every one of A's was still held by its receiver
        assert not {"SUCCEEDED", "FAILED"} & set(held), held
        assert len(fine.requests) == 1
        assert len(stuck.requests) < 4  # A never held all four delivery slots
