"""What the HTTP edge does to every request, and in which order, seen from a client of a real server.

Every response carries its X-Request-ID (given, cut to 64 characters, or new), the 500 included, and every
error body repeats it. NUL bytes in the path or query and a declared body over the limit are refused before
the key is read; a body that streams past the limit is refused as it arrives. Rate-limit headers follow the
request id. The latency histogram labels a request by its route template, or `<unmatched>`, refusals
included, so its label values stay bounded.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from harness.server import LiveServer, start_server, stop_server
from memserver.domain.limits import Limits
from memserver.storage.db import Database
from tests.api.helpers import ADD_V3, verbatim_add_body
from tests.api.test_atomicity import failing

LIMITS = Limits()  # the servers under test run with the defaults
TOO_LARGE = f"Request body larger than {LIMITS.max_body_bytes} bytes (MEMSERVER_LIMITS__MAX_BODY_BYTES)"
NUL = "NUL bytes are not allowed"
JSON_HEADERS = ["date", "server", "content-length", "content-type", "x-request-id"]


def names(r: httpx.Response) -> list[str]:
    """The response's header names, in the order the server sent them."""
    return [name.decode().lower() for name, _ in r.headers.raw]


def error_of(r: httpx.Response) -> dict[str, str]:
    """The error body without its request id, after checking that the id is the response's own."""
    body: dict[str, str] = r.json()
    assert body.pop("request_id") == r.headers["x-request-id"], (body, r.headers)
    return body


def raw_request(url: str, head: str, body: bytes = b"") -> bytes:
    """One request written byte for byte (paths that a client library would normalise); the raw reply."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _length(reply):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def _length(reply: bytes) -> int:
    found = re.search(rb"\r\ncontent-length: (\d+)", reply.split(b"\r\n\r\n", 1)[0], re.IGNORECASE)
    return int(found.group(1)) if found else 0


# -- request ids ----------------------------------------------------------------------------------
def test_a_success_carries_the_request_id_it_was_given(api: httpx.Client) -> None:
    r = api.get("/v1/ping/", headers={"X-Request-ID": "trace-me-42"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "trace-me-42"
    assert names(r) == JSON_HEADERS
    r = api.get("/v1/ping/", headers={"X-Request-ID": "x" * 100})
    assert r.headers["x-request-id"] == "x" * 64  # bounded: it goes into every log line
    r = api.get("/v1/ping/")
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])
    assert api.get("/v1/ping/").headers["x-request-id"] != r.headers["x-request-id"]


async def test_a_500_carries_the_request_id_and_says_nothing_more(
    aapi: httpx.AsyncClient, db: Database, live_server: str
) -> None:
    marker = f"edge-{uuid.uuid4().hex[:8]}"
    own = httpx.AsyncClient(base_url=live_server, headers=aapi.headers, timeout=30)  # the 500 may close it
    async with failing(db, "memory_history", "INSERT", "new_memory", marker), own:
        r = await own.post(ADD_V3, json=verbatim_add_body(f"{marker} text"), headers={"X-Request-ID": "boom-1"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "boom-1"
    assert names(r) == JSON_HEADERS
    assert r.json() == {"error": "internal_error", "detail": "Internal server error", "request_id": "boom-1"}


# -- refusals before the key is read ---------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/v1/memories/a%00b/", "/v1/memories/?user_id=a%00b", "/v1/memories/a%2500b/?x=%00", "/nowhere%00"]
)
def test_nul_bytes_are_refused_before_routing_and_the_key(live_server: str, path: str) -> None:
    r = httpx.get(f"{live_server}{path}", timeout=30)  # no key: the NUL refusal comes first
    assert r.status_code == 400
    assert names(r) == JSON_HEADERS
    assert error_of(r) == {"error": NUL, "detail": NUL}


def test_a_declared_body_over_the_limit_is_refused_before_the_key(live_server: str) -> None:
    head = (
        f"POST /v3/memories/search/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {LIMITS.max_body_bytes + 1}\r\nX-Request-ID: big-1\r\nConnection: close\r\n"
    )
    reply = raw_request(live_server, head, b'{"query": "')
    status_line, rest = reply.split(b"\r\n", 1)
    assert status_line.split()[1] == b"413", reply[:300]
    assert b"x-request-id: big-1" in rest.lower()
    r = httpx.post(f"{live_server}/v1/memories/search/", content=b"x" * (LIMITS.max_body_bytes + 1), timeout=30)
    assert r.status_code == 413
    assert names(r) == JSON_HEADERS
    assert error_of(r) == {"error": TOO_LARGE, "detail": TOO_LARGE}


def test_a_streamed_body_over_the_limit_is_refused_as_it_arrives(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"filters": {"user_id": "u"}, "query": "'
        for _ in range(LIMITS.max_body_bytes // 65536 + 2):
            yield b"y" * 65536
        yield b'"}'

    r = api.post("/v3/memories/search/", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert names(r) == JSON_HEADERS
    assert error_of(r) == {"error": TOO_LARGE, "detail": TOO_LARGE}


# -- routing -------------------------------------------------------------------------------------
def test_an_unknown_path_is_a_json_404_and_a_wrong_method_a_405(live_server: str) -> None:
    r = httpx.get(f"{live_server}/v1/no-such-route/", timeout=30)
    assert r.status_code == 404
    assert names(r) == JSON_HEADERS
    assert error_of(r) == {"error": "Not found: GET /v1/no-such-route", "detail": "Not found: GET /v1/no-such-route"}
    r = httpx.patch(f"{live_server}/v1/ping/", timeout=30)
    assert r.status_code == 405
    assert error_of(r) == {
        "error": "Method PATCH is not allowed on /v1/ping",
        "detail": "Method PATCH is not allowed on /v1/ping",
    }


def test_slashes_are_normalised_and_an_encoded_slash_stays_in_its_segment(
    live_server: str, tenant: tuple[str, str]
) -> None:
    auth = f"Authorization: Token {tenant[1]}\r\n"
    for path in ("/v1/ping", "/v1/ping/", "//v1//ping//"):
        reply = raw_request(live_server, f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n")
        assert reply.split(b"\r\n", 1)[0].split()[1] == b"200", (path, reply[:300])
    reply = raw_request(live_server, f"GET /v1/memories/a%2Fb/ HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n")
    assert reply.split(b"\r\n", 1)[0].split()[1] == b"400", reply[:300]  # the memory route, a/b is no UUID
    assert b"memory_id should be a valid UUID" in reply


# -- rate limits ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limited(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        database_url,
        tmp_path_factory.mktemp("edge-order") / "api.log",
        MEMSERVER_RATELIMIT__PER_KEY="2",
        MEMSERVER_RATELIMIT__WINDOW_S="3600",
    )
    try:
        yield server
    finally:
        stop_server(server)


def test_rate_limit_headers_follow_the_request_id(limited: LiveServer, tenant: tuple[str, str]) -> None:
    with httpx.Client(base_url=limited.url, headers={"Authorization": f"Token {tenant[1]}"}, timeout=30) as c:
        statuses = []
        for _ in range(4):  # a window boundary may reset the count once: 4 requests reach a 429 regardless
            r = c.get("/v1/ping/", headers={"X-Request-ID": "limited"})
            statuses.append(r.status_code)
            limit_headers = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]
            if r.status_code == 200:
                assert names(r) == [*JSON_HEADERS, *limit_headers]
            else:
                assert r.status_code == 429
                assert names(r) == [*JSON_HEADERS, *limit_headers, "retry-after"]
                assert r.headers["x-ratelimit-remaining"] == "0"
                body = error_of(r)
                assert body["detail"].startswith("Rate limit exceeded")
                break
        assert statuses[-1] == 429, statuses


# -- metrics -------------------------------------------------------------------------------------
def _count(text: str, method: str, route: str, status: int) -> float:
    line = f'memserver_http_request_duration_seconds_count{{method="{method}",route="{route}",status="{status}"}} '
    for row in text.splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


def test_latency_is_labelled_by_route_template_or_unmatched(live_server: str, tenant: tuple[str, str]) -> None:
    def counts() -> dict[tuple[str, str, int], float]:
        text = httpx.get(f"{live_server}/metrics", timeout=30).text
        return {k: _count(text, *k) for k in expected}

    expected = {
        ("GET", "<unmatched>", 404): 2,  # two different unknown paths: one label
        ("GET", "<unmatched>", 400): 1,  # refused for a NUL before routing
        ("POST", "<unmatched>", 413): 1,  # refused for its declared size before routing
        ("GET", "/v1/memories/{memory_id}", 404): 1,
        ("GET", "/v1/ping", 401): 1,
    }
    before = counts()
    headers = {"Authorization": f"Token {tenant[1]}"}
    httpx.get(f"{live_server}/v1/nowhere-{uuid.uuid4().hex}", timeout=30)
    httpx.get(f"{live_server}/v1/nowhere-{uuid.uuid4().hex}", timeout=30)
    httpx.get(f"{live_server}/v1/memories/a%00b/", timeout=30)
    httpx.post(f"{live_server}/v3/memories/add/", content=b"x" * (LIMITS.max_body_bytes + 1), timeout=30)
    httpx.get(f"{live_server}/v1/memories/{uuid.uuid4()}/", headers=headers, timeout=30)
    httpx.get(f"{live_server}/v1/ping/", headers={"Authorization": "Token m0-wrong"}, timeout=30)
    after = counts()
    assert {k: after[k] - before[k] for k in expected} == expected
