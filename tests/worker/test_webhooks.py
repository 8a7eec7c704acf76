"""Webhooks end to end: created, listed, updated and deleted through the official Python SDKs; a receiver
on 127.0.0.1 gets signed deliveries for memory add/update/delete, answers 500 once and receives the
retry; every attempt is recorded and visible through the API. The server runs the in-process runner on
a database of its own, with private URLs allowed (as the operator setting permits)."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, served
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.providers.webhooks.signature import SIGNATURE_HEADER, verify
from tests.worker.jobs_harness import fresh_database, make_tenant

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

import envs


class Receiver:
    """A webhook receiver: records every request; answers the scripted statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "at": time.time()})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, *statuses: int) -> None:
        """The statuses the next requests get (then 200)."""
        with self.lock:
            self.statuses = list(statuses)

    def wait(self, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {n} deliveries, got {len(self.requests)}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hooks_server(pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    url = fresh_database(pg, "webhooks")
    with served(
        url,
        tmp_path_factory.mktemp("webhooks") / "api.log",
        MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS="true",
        MEMSERVER_WEBHOOKS__RETRY_BACKOFF_S="0.3",
        MEMSERVER_WORKER__POLL_INTERVAL_S="0.2",
    ) as server:
        yield server, url


SDK_SCRIPT = """
import json, os, sys
from mem0 import MemoryClient
c = MemoryClient(api_key=os.environ["MEMSERVER_KEY"], host=os.environ["MEMSERVER_URL"])
pid, url, action = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
if action == "create":
    out["created"] = c.create_webhook(url=url, name="hook", project_id=pid,
                                      event_types=["memory_add", "memory_update"])
    out["listed"] = c.get_webhooks(project_id=pid)
    out["updated"] = c.update_webhook(webhook_id=out["created"]["webhook_id"], name="renamed",
                                      event_types=["memory_add", "memory_update", "memory_delete"])
    out["listed_after"] = c.get_webhooks(project_id=pid)
else:
    out["deleted"] = c.delete_webhook(webhook_id=action)
    out["listed_after"] = c.get_webhooks(project_id=pid)
print("RESULT " + json.dumps(out))
"""


def run_sdk(version: str, base_url: str, key: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    try:
        python = envs.python_sdk(version)
    except envs.SDKEnvError as exc:
        pytest.fail(f"could not build the mem0ai {version} environment:\n{exc}", pytrace=False)
    script = tmp_path / "hooks_sdk.py"
    script.write_text(SDK_SCRIPT)
    proc = subprocess.run(
        [str(python), str(script), *args],
        env=envs.scenario_env(base_url, key, tmp_path / "mem0-home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", ["2.2.1", "1.0.11", "0.1.118"])
def test_sdks_create_list_update_and_delete_webhooks(
    hooks_server: tuple[LiveServer, str], tmp_path: Path, version: str
) -> None:
    server, url = hooks_server
    project_id, key = make_tenant(url)
    receiver_url = "http://127.0.0.1:9/hook"
    out = run_sdk(version, server.url, key, tmp_path, project_id, receiver_url, "create")
    created = out["created"]
    assert created["url"] == receiver_url
    assert created["name"] == "hook"
    assert created["is_active"] is True
    assert created["event_types"] == ["memory_add", "memory_update"]
    assert created["secret"].startswith("whsec_")
    assert [h["webhook_id"] for h in out["listed"]] == [created["webhook_id"]]
    assert "secret" not in out["listed"][0]
    assert out["updated"] == {"message": "Webhook updated successfully"}
    assert out["listed_after"][0]["name"] == "renamed"
    assert out["listed_after"][0]["event_types"] == ["memory_add", "memory_update", "memory_delete"]
    out = run_sdk(version, server.url, key, tmp_path, project_id, receiver_url, created["webhook_id"])
    assert out["deleted"] == {"message": "Webhook deleted successfully"}
    assert out["listed_after"] == []


def test_signed_deliveries_are_retried_after_a_500_and_recorded(hooks_server: tuple[LiveServer, str]) -> None:
    server, url = hooks_server
    project_id, key = make_tenant(url)
    receiver = Receiver(statuses=[500])
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
            r = api.post(
                f"/api/v1/webhooks/projects/{project_id}/",
                json={
                    "url": receiver.url,
                    "name": "r",
                    "event_types": ["memory_add", "memory_update", "memory_delete"],
                },
            )
            assert r.status_code == 201, r.text
            hook = r.json()
            secret = hook["secret"]
            t0 = time.monotonic()
            r = api.post(
                "/v3/memories/add/",
                json={
                    "messages": [{"role": "user", "content": "I like green tea"}],
                    "user_id": "alice",
                    "infer": False,
                },
            )
            assert r.status_code == 200, r.text
            assert time.monotonic() - t0 < 2  # the add does not wait for the receiver
            memory_id = r.json()["results"][0]["id"]

            first, retry = receiver.wait(2)
            assert retry["at"] - first["at"] >= 0.25  # backoff before the retry
            for req in (first, retry):
                # the documented scheme, computed here: HMAC-SHA256(secret, "<t>.<raw body>"), hex
                header = req["headers"][SIGNATURE_HEADER]
                fields = dict(part.split("=", 1) for part in header.split(","))
                assert set(fields) == {"t", "v1"}, header
                assert fields["t"] == req["headers"]["X-Memserver-Timestamp"]
                assert abs(int(fields["t"]) - req["at"]) < 60
                expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + req["body"], hashlib.sha256)
                assert hmac.compare_digest(fields["v1"], expected.hexdigest())
                # the receiver helper memserver ships agrees, and refuses what a receiver must refuse
                assert verify(secret, header, req["body"])
                assert not verify(secret, header, req["body"] + b" ")
                assert not verify("whsec_wrong", req["headers"][SIGNATURE_HEADER], req["body"])
                # a replayed delivery with an old timestamp is refused by the receiver's check
                assert not verify(secret, req["headers"][SIGNATURE_HEADER], req["body"], now=time.time() + 3600)
            assert first["headers"]["X-Memserver-Delivery"] == retry["headers"]["X-Memserver-Delivery"]
            assert (first["headers"]["X-Memserver-Attempt"], retry["headers"]["X-Memserver-Attempt"]) == ("1", "2")
            body = json.loads(retry["body"])
            assert body["event_details"] == {"id": memory_id, "data": {"memory": "I like green tea"}, "event": "ADD"}
            assert body["event_type"] == "memory_add"
            assert body["user_id"] == "alice"

            def deliveries() -> list[dict[str, Any]]:
                r = api.get(f"/api/v1/webhooks/{hook['webhook_id']}/deliveries/")
                assert r.status_code == 200, r.text
                return r.json()["results"]  # type: ignore[no-any-return]

            deadline = time.monotonic() + 10
            while deliveries()[0]["status"] != "SUCCEEDED" and time.monotonic() < deadline:
                time.sleep(0.1)
            (d,) = deliveries()
            assert d["status"] == "SUCCEEDED"
            assert d["attempts"] == 2
            assert d["response_status"] == 200
            assert [h["response_status"] for h in d["history"]] == [500, 200]
            assert d["last_error"] == "receiver answered HTTP 500"

            # update and delete are delivered too, as Mem0 documents them
            assert api.put(f"/v1/memories/{memory_id}/", json={"text": "I like black tea"}).status_code == 200
            assert api.delete(f"/v1/memories/{memory_id}/").status_code == 200
            events = [json.loads(x["body"])["event_details"] for x in receiver.wait(4)[2:]]
            assert sorted(e["event"] for e in events) == ["DELETE", "UPDATE"]
            assert {e["id"] for e in events} == {memory_id}
            # deliveries are not add events: the events feed does not list them
            assert all(e["event_type"] == "ADD" for e in api.get("/v1/events/").json()["results"])
    finally:
        receiver.close()


def test_a_rolled_back_change_sends_nothing(hooks_server: tuple[LiveServer, str]) -> None:
    server, url = hooks_server
    project_id, key = make_tenant(url)
    receiver = Receiver()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
            r = api.post(
                f"/api/v1/webhooks/projects/{project_id}/",
                json={"url": receiver.url, "name": "r", "event_types": ["memory_add"]},
            )
            assert r.status_code == 201
            msgs = [{"role": "user", "content": "only once"}]
            assert (
                api.post("/v3/memories/add/", json={"messages": msgs, "user_id": "u", "infer": False}).status_code
                == 200
            )
            # the same text again is a NOOP: no memory added, no delivery
            assert (
                api.post("/v3/memories/add/", json={"messages": msgs, "user_id": "u", "infer": False}).status_code
                == 200
            )
            receiver.wait(1)
            time.sleep(1.0)
            assert len(receiver.requests) == 1
    finally:
        receiver.close()


def test_webhook_urls_are_checked(api: httpx.Client, tenant: tuple[str, str]) -> None:
    """The default server refuses loopback/private receivers and non-http schemes; other projects are 403."""
    project_id = tenant[0]
    path = f"/api/v1/webhooks/projects/{project_id}/"
    for bad in (
        "http://127.0.0.1:8080/x",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://localhost/x",
        "ftp://example.com/x",
        "not a url",
    ):
        r = api.post(path, json={"url": bad, "name": "n", "event_types": ["memory_add"]})
        assert r.status_code == 400, (bad, r.text)
        assert "url" in r.json()["detail"]
    r = api.post(path, json={"name": "n"})
    assert r.status_code == 400
    assert r.json()["url"] == ["This field is required."]
    assert r.json()["event_types"] == ["This field is required."]
    r = api.get("/api/v1/webhooks/projects/00000000-0000-0000-0000-000000000000/")
    assert r.status_code == 403
    assert r.json()["error"] == "You don't have access to this project"
    assert api.delete("/api/v1/webhooks/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_deliveries_go_out_on_commit_without_waiting_for_the_poll(pg: EmbeddedPostgres, tmp_path: Path) -> None:
    """The outbox notifies the runners (LISTEN/NOTIFY, sent on commit): a 60 s poll does not delay deliveries."""
    url = fresh_database(pg, "notify")
    project_id, key = make_tenant(url)
    with (
        served(
            url,
            tmp_path / "api.log",
            MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS="true",
            MEMSERVER_WORKER__POLL_INTERVAL_S="60",
        ) as server,
        closing(Receiver()) as receiver,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api,
    ):
        r = api.post(
            f"/api/v1/webhooks/projects/{project_id}/",
            json={"url": receiver.url, "name": "r", "event_types": ["memory_add"]},
        )
        assert r.status_code == 201
        time.sleep(1.0)  # past the sweep every runner makes when it starts
        for i in range(3):
            t0 = time.time()
            msgs = [{"role": "user", "content": f"fact {i}"}]
            assert api.post("/v3/memories/add/", json={"messages": msgs, "user_id": "n", "infer": False}).is_success
            arrived = receiver.wait(i + 1, timeout=5)[-1]["at"]
            assert arrived - t0 < 2.0


TS_SCRIPT = """
import { MemoryClient } from "mem0ai";
const client = new MemoryClient({ apiKey: process.env.MEMSERVER_KEY, host: process.env.MEMSERVER_URL });
const url = process.argv[2];
const out = {};
out.created = await client.createWebhook({ name: "ts-hook", url, eventTypes: ["memory_add"] });
out.listed = await client.getWebhooks();
out.updated = await client.updateWebhook({
  webhookId: out.created.webhookId, name: "ts-renamed", eventTypes: ["memory_add", "memory_delete"],
});
out.listedAfter = await client.getWebhooks();
out.deleted = await client.deleteWebhook({ webhookId: out.created.webhookId });
out.listedEnd = await client.getWebhooks();
console.log("RESULT " + JSON.stringify(out));
"""


def test_the_ts_sdk_creates_lists_updates_and_deletes_webhooks(
    hooks_server: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, url = hooks_server
    _, key = make_tenant(url)
    try:
        sdk_dir = envs.node_sdk()
    except envs.SDKEnvError as exc:
        pytest.fail(f"could not build the npm mem0ai environment:\n{exc}", pytrace=False)
    work = tmp_path / "ts"
    work.mkdir()
    (work / "node_modules").symlink_to(sdk_dir / "node_modules")
    (work / "hooks.mjs").write_text(TS_SCRIPT)
    node = shutil.which("node") or "node"
    proc = subprocess.run(
        [node, str(work / "hooks.mjs"), "https://example.com/hook"],
        cwd=work,
        env=envs.scenario_env(server.url, key, tmp_path / "mem0-home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[7:])
    created = out["created"]
    assert created["name"] == "ts-hook"
    assert created["isActive"] is True
    assert created["eventTypes"] == ["memory_add"]
    assert [h["webhookId"] for h in out["listed"]] == [created["webhookId"]]  # the same JSON type (===)
    assert out["updated"]["message"] == "Webhook updated successfully"
    assert out["listedAfter"][0]["eventTypes"] == ["memory_add", "memory_delete"]
    assert out["deleted"]["message"] == "Webhook deleted successfully"
    assert out["listedEnd"] == []


# -- a test event (memserver extension): one signed delivery, recorded like the others ----------------------
def _hook(api: httpx.Client, project_id: str, url: str) -> dict[str, Any]:
    r = api.post(
        f"/api/v1/webhooks/projects/{project_id}/", json={"url": url, "name": "t", "event_types": ["memory_add"]}
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _settled(api: httpx.Client, webhook_id: str, delivery_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The delivery once it has SUCCEEDED or FAILED, and the page that lists it."""
    deadline = time.monotonic() + 20
    while True:
        page = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries/").json()
        (d,) = [d for d in page["results"] if d["delivery_id"] == delivery_id]
        if d["status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return d, page
        time.sleep(0.1)


def test_a_test_event_is_one_signed_delivery_recorded_like_the_others(hooks_server: tuple[LiveServer, str]) -> None:
    server, url = hooks_server
    project_id, key = make_tenant(url)
    with (
        closing(Receiver()) as receiver,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api,
    ):
        hook = _hook(api, project_id, receiver.url)
        r = api.post(f"/api/v1/webhooks/{hook['webhook_id']}/test/")
        assert r.status_code == 202, r.text
        assert r.json()["message"] == "Test delivery queued"
        delivery_id = r.json()["delivery_id"]
        (got,) = receiver.wait(1)
        assert got["headers"]["X-Memserver-Event"] == "webhook_test"
        assert got["headers"]["X-Memserver-Delivery"] == delivery_id
        assert verify(hook["secret"], got["headers"][SIGNATURE_HEADER], got["body"])
        body = json.loads(got["body"])
        assert body["event_type"] == "webhook_test"
        assert body["event_details"] == {"event": "TEST", "message": "memserver test delivery"}
        assert body["project_id"] == project_id
        d, page = _settled(api, hook["webhook_id"], delivery_id)
        assert (d["status"], d["attempts"], d["event_type"], d["response_status"]) == (
            "SUCCEEDED",
            1,
            "webhook_test",
            200,
        )
        (attempt,) = d["history"]
        assert attempt["response_status"] == 200
        assert isinstance(attempt["duration_ms"], int)
        assert page["count"] == 1


def test_a_failing_test_event_is_tried_once_with_its_error_and_timing(hooks_server: tuple[LiveServer, str]) -> None:
    server, url = hooks_server
    project_id, key = make_tenant(url)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    with (
        closing(Receiver(statuses=[500, 500])) as receiver,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api,
    ):
        for target, error, status in (
            (receiver.url, "receiver answered HTTP 500", 500),
            (closed, "delivery failed", None),
        ):
            hook = _hook(api, project_id, target)
            r = api.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
            assert r.status_code == 202, r.text
            d, _ = _settled(api, hook["webhook_id"], r.json()["delivery_id"])
            assert (d["status"], d["attempts"], d["response_status"]) == ("FAILED", 1, status), d
            assert d["last_error"].startswith(error)
            assert d["next_attempt_at"] is None
            (attempt,) = d["history"]
            assert attempt["error"].startswith(error)
            assert attempt["response_status"] == status
            assert isinstance(attempt["duration_ms"], int)
            assert attempt["duration_ms"] >= 0
        time.sleep(1.0)  # past the retry backoff (0.3 s): a probe is never retried
        assert len(receiver.requests) == 1


def test_a_test_event_needs_an_active_webhook_of_the_project(hooks_server: tuple[LiveServer, str]) -> None:
    server, url = hooks_server
    project_id, key = make_tenant(url)
    _, other_key = make_tenant(url)
    with (
        httpx.Client(base_url=server.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Token {other_key}"}, timeout=30) as other,
    ):
        hook = _hook(api, project_id, "https://hooks.example.com/x")
        assert api.put(f"/api/v1/webhooks/{hook['webhook_id']}/", json={"is_active": False}).is_success
        r = api.post(f"/api/v1/webhooks/{hook['webhook_id']}/test/")
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "The webhook is paused; resume it to send a test event"
        for client, path in (
            (other, f"/api/v1/webhooks/{hook['webhook_id']}/test/"),
            (api, "/api/v1/webhooks/00000000-0000-0000-0000-000000000000/test/"),
            (api, "/api/v1/webhooks/not-a-uuid/test/"),
        ):
            r = client.post(path)
            assert (r.status_code, r.json()["error"]) == (404, "Webhook not found"), r.text
        assert api.get(f"/api/v1/webhooks/{hook['webhook_id']}/deliveries/").json()["results"] == []


def test_url_and_event_type_errors_name_their_field(api: httpx.Client, tenant: tuple[str, str]) -> None:
    """Mem0's field-keyed 400 (`{"url": ["..."]}`) for the URL policy and the event types too."""
    path = f"/api/v1/webhooks/projects/{tenant[0]}/"
    r = api.post(path, json={"url": "http://10.1.2.3/x", "name": "n", "event_types": ["memory_add"]})
    assert r.status_code == 400, r.text
    assert r.json()["url"] == [r.json()["error"]]
    assert r.json()["error"].startswith("url: ")
    r = api.post(path, json={"url": "https://example.com/x", "name": "n", "event_types": ["memory_explode"]})
    assert r.status_code == 400, r.text
    assert r.json()["event_types"] == ["event_types: unknown event type 'memory_explode'"]
    assert r.json()["error"] == "event_types: unknown event type 'memory_explode'"
