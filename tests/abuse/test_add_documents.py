"""Review items 1 and 3: one add does a bounded amount of document work, and PDFs never run in the API process.

A real `memserver serve` with the scripted model (tests/api/scripted_llm.py), a real document server on
127.0.0.1 that counts what it serves (private URLs are allowed for it), and PDFs built by tests/fakes/pdfs.py.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, served
from tests.api.helpers import assert_error
from tests.api.scripted_llm import client, fact, facts, fake, llm, llm_env, prompt_of
from tests.api.test_inference import memories, wait_event
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.pdfs import compression_bomb, cpu_bomb, text_pdf

__all__ = ["client", "fake", "llm"]

DEADLINE_S = 4
SLOW_S = 2.5  # one slow document: under the per-download timeout (15 s), but three of them pass the deadline
PDF_CPU_S = 1
MAX_BYTES = 1_000_000
SETTINGS = {
    "MEMSERVER_DOCUMENTS__ALLOW_PRIVATE_URLS": "true",
    "MEMSERVER_DOCUMENTS__DEADLINE_S": str(DEADLINE_S),
    "MEMSERVER_DOCUMENTS__PDF_CPU_S": str(PDF_CPU_S),
    "MEMSERVER_DOCUMENTS__MAX_BYTES": str(MAX_BYTES),
}


class DocServer:
    """/chars/<n>/<letter>: that letter n times; /slow/<s>: "slow" after s seconds. Counts every request."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer.lock:
                    outer.paths.append(self.path)
                parts = self.path.strip("/").split("/")
                if parts[0] == "slow":
                    time.sleep(float(parts[1]))
                    body = b"slow document"
                else:
                    body = parts[2].encode() * int(parts[1])
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.send_header("connection", "close")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a reader gave up
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def served(self) -> list[str]:
        with self.lock:
            return list(self.paths)


@pytest.fixture(scope="module")
def docs() -> Iterator[DocServer]:
    d = DocServer()
    threading.Thread(target=d.server.serve_forever, daemon=True).start()
    yield d
    d.server.shutdown()
    d.server.server_close()


@pytest.fixture
def doc_server(docs: DocServer) -> DocServer:
    docs.paths.clear()
    return docs


@pytest.fixture(scope="module")
def llm_server(database_url: str, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """This module's memserver (the `client` fixture talks to it): short document deadline and PDF CPU limit."""
    log = tmp_path_factory.mktemp("add-documents-server") / "memserver.log"
    with served(database_url, log, **llm_env(fake, MEMSERVER_LLM__TIMEOUT_S="5", **SETTINGS)) as server:
        yield server


def txt(url: str) -> dict[str, Any]:
    return {"type": "txt_url", "txt_url": {"url": url}}


def pdf_part(data: bytes) -> dict[str, Any]:
    return {"type": "pdf_url", "pdf_url": {"url": "data:application/pdf;base64," + base64.b64encode(data).decode()}}


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def add_body(*contents: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": c} for c in contents], "user_id": "alice", **extra}


# Every generation's add route: v3 (2.x, npm 3.x), v1 queued and processed (0.1.x, 1.0.x), and the
# pre-release adds that went to the v3 list route.
ROUTES = {
    "v3 add": ("/v3/memories/add/", {}),
    "v1 add": ("/v1/memories/", {}),
    "v1 add, async_mode=false": ("/v1/memories/", {"async_mode": False}),
    "v3 list route (2.0.0b1)": ("/v3/memories/", {}),
}


def assert_add_400(r: httpx.Response, limit: str, *words: str) -> None:
    """The add routes' Mem0 400 shape, naming the setting that bounds what was refused."""
    body = assert_error(r, 400, detail=limit, error="400 Bad Request")
    assert limit in body["details"]["message"], body
    for w in words:
        assert w in body["detail"], body


# ----------------------------------------------------------------------------------------------
# refused at the edge, before any work
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", list(ROUTES))
def test_too_many_document_parts_are_refused_before_anything_is_fetched(
    client: httpx.Client, llm: FakeOpenAI, doc_server: DocServer, route: str
) -> None:
    path, extra = ROUTES[route]
    three = [txt(f"{doc_server.url}/chars/10/{c}") for c in "abc"]  # six in all, over two messages
    r = client.post(path, json=add_body(three, three, **extra))
    assert_add_400(r, "MEMSERVER_DOCUMENTS__MAX_PARTS", "at most 5 document parts")
    assert doc_server.served() == []  # nothing was fetched
    assert llm.chat_requests() == []
    assert client.get("/v1/events/").json()["results"] == []  # nothing was queued either
    assert memories(client) == []


def test_five_document_parts_are_read(client: httpx.Client, llm: FakeOpenAI, doc_server: DocServer) -> None:
    llm.chat_script = lambda body: facts(fact("Read five documents"))
    parts = [txt(f"{doc_server.url}/chars/10/{c}") for c in "abcde"]
    r = client.post("/v1/memories/", json=add_body(parts, async_mode=False))
    assert r.status_code == 200, r.text
    assert len(doc_server.served()) == 5


@pytest.mark.parametrize("route", list(ROUTES))
def test_images_are_bounded_in_number_and_inline_size(client: httpx.Client, llm: FakeOpenAI, route: str) -> None:
    path, extra = ROUTES[route]
    six = [image(f"https://example.invalid/{i}.png") for i in range(6)]
    assert_add_400(client.post(path, json=add_body(six, **extra)), "MEMSERVER_DOCUMENTS__MAX_IMAGES", "at most 5")
    big = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"\x00" * 2_000_000).decode()
    assert_add_400(
        client.post(path, json=add_body([image(big)], **extra)), "MEMSERVER_DOCUMENTS__MAX_IMAGE_BYTES", "2000000"
    )
    big_doc = [{"type": "txt_url", "txt_url": {"url": base64.b64encode(b"x" * (MAX_BYTES + 10)).decode()}}]
    assert_add_400(client.post(path, json=add_body(big_doc, **extra)), "MEMSERVER_DOCUMENTS__MAX_BYTES", "1000000")
    assert llm.chat_requests() == []


# ----------------------------------------------------------------------------------------------
# bounded during the work
# ----------------------------------------------------------------------------------------------
def test_document_text_of_one_add_is_bounded_in_total_with_a_note(
    client: httpx.Client, llm: FakeOpenAI, doc_server: DocServer
) -> None:
    """100k characters of documents per add (default): 40k + 40k + the first 20k of the third; the fourth
    is not even fetched. The event's notes say what was cut and why."""
    llm.chat_script = lambda body: facts(fact("Sent four long documents"))
    parts = [txt(f"{doc_server.url}/chars/40000/{c}") for c in "abcd"]
    r = client.post("/v3/memories/add/", json=add_body([{"type": "text", "text": "My notes."}, *parts]))
    event = wait_event(client, r.json()["event_id"])
    assert event["status"] == "SUCCEEDED", event
    prompt = prompt_of(llm.chat_requests()[-1]["body"])
    assert "a" * 40_000 in prompt
    assert "b" * 40_000 in prompt
    assert "c" * 20_000 in prompt
    assert "c" * 20_001 not in prompt
    assert "dddd" not in prompt
    assert [p.split("/")[-1] for p in doc_server.served()] == ["a", "b", "c"]
    notes = event["metadata"]["notes"]
    assert any("a document was cut" in n and "MEMSERVER_DOCUMENTS__MAX_TOTAL_CHARS" in n for n in notes), notes
    assert any("a document was not read" in n and "100000 characters in all" in n for n in notes), notes


def test_one_deadline_bounds_all_fetching_of_an_add(
    client: httpx.Client, llm: FakeOpenAI, doc_server: DocServer
) -> None:
    """Each slow document is within the per-download timeout; together they pass the add's one deadline."""
    llm.chat_script = lambda body: facts(fact("never extracted"))
    slow = [txt(f"{doc_server.url}/slow/{SLOW_S}") for _ in range(3)]
    started = time.monotonic()
    r = client.post("/v1/memories/", json=add_body(slow, async_mode=False))
    elapsed = time.monotonic() - started
    detail = f"took longer than {DEADLINE_S} s (MEMSERVER_DOCUMENTS__DEADLINE_S)"
    assert_error(r, 400, detail=detail)
    assert elapsed < DEADLINE_S + SLOW_S, elapsed  # stopped at the deadline, not after the third download
    # the same add, queued: FAILED with the reason, nothing written, no model call
    r = client.post("/v3/memories/add/", json=add_body(slow))
    event = wait_event(client, r.json()["event_id"], timeout=30)
    assert event["status"] == "FAILED", event
    assert detail in event["error"], event
    assert llm.chat_requests() == []
    assert memories(client) == []


# ----------------------------------------------------------------------------------------------
# PDFs: parsed in a child process; the API neither blocks nor grows
# ----------------------------------------------------------------------------------------------
def reset_peak_rss(server: LiveServer) -> None:
    """Start the API process's peak-RSS mark (VmHWM) afresh from its current RSS (Linux `clear_refs` 5)."""
    Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")


def peak_rss_mb(server: LiveServer) -> float:
    """The API process's peak resident memory since the last reset (VmHWM), in MB."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_pdf_bomb_is_refused_and_the_api_does_not_take_its_size(
    client: httpx.Client, llm: FakeOpenAI, llm_server: LiveServer
) -> None:
    llm.chat_script = lambda body: facts(fact("Allergic to penicillin"))
    r = client.post("/v1/memories/", json=add_body([pdf_part(text_pdf("Allergic to penicillin"))], async_mode=False))
    assert r.status_code == 200, r.text  # a real PDF is read (this also warms the API process up)
    assert "Allergic to penicillin" in prompt_of(llm.chat_requests()[-1]["body"])
    llm.requests.clear()
    bomb = compression_bomb(300)  # 300 MB of zeros in one FlateDecode stream: ~300 KB
    reset_peak_rss(llm_server)
    before = peak_rss_mb(llm_server)
    r = client.post("/v1/memories/", json=add_body([pdf_part(bomb)], async_mode=False))
    assert_error(r, 400, detail="a pdf document was refused: it decompresses past the reader's limits")
    r = client.post("/v3/memories/add/", json=add_body([pdf_part(bomb)]))
    event = wait_event(client, r.json()["event_id"])
    assert event["status"] == "FAILED", event
    assert "decompresses past the reader's limits" in event["error"]
    grown = peak_rss_mb(llm_server) - before
    print(f"API peak RSS {before:.0f} MB before two 300 MB bombs, +{grown:.1f} MB after")  # noqa: T201
    assert grown < 40, grown  # not the inflated 300 MB (nor pypdf's own 75 MB cap)
    assert llm.chat_requests() == []
    assert [m["memory"] for m in memories(client)] == ["Allergic to penicillin"]


def test_the_api_answers_while_a_pdf_burns_cpu(client: httpx.Client, llm: FakeOpenAI, llm_server: LiveServer) -> None:
    """A 1.4 KB PDF that keeps the parser busy for minutes: its child is killed at PDF_CPU_S of CPU, and
    /health answers quickly all the while."""
    llm.chat_script = lambda body: facts(fact("never extracted"))
    body = add_body([pdf_part(cpu_bomb(40))], async_mode=False)
    with ThreadPoolExecutor(1) as pool:
        adding = pool.submit(client.post, "/v1/memories/", json=body)
        latencies = []
        with httpx.Client(base_url=llm_server.url, timeout=30) as probe:
            while not adding.done():
                started = time.monotonic()
                assert probe.get("/health").status_code == 200
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)
        r = adding.result()
    assert_error(r, 400, detail=f"more than {PDF_CPU_S} s of CPU time (MEMSERVER_DOCUMENTS__PDF_CPU_S)")
    assert len(latencies) >= 5, latencies  # the probes ran while the PDF was parsed
    assert max(latencies) < 1.0, max(latencies)  # (the parse on the event loop held it for minutes)
    assert llm.chat_requests() == []
