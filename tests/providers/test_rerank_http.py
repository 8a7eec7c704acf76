"""The HTTP reranker adapter against the fake /rerank server over real HTTP: the request body of each shape
exactly, what it reads leniently, and each failure as a ProviderError in memserver's words."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from harness.server import free_port
from memserver.providers.errors import (
    ProviderError,
    ProviderInvalidReply,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from memserver.providers.rerank.base import RerankScore
from memserver.providers.rerank.http import MAX_QUERY_CHARS, HttpReranker, parse_reply
from tests.fakes.rerank_server import FakeReranker, running

KEY = "rk-DO-NOT-LEAK-5678"
PATHS = {"cohere": "/v1/rerank", "voyage": "/voyage/v1/rerank", "tei": "/rerank"}
DOCS = ["Alice lives in Lisbon.", "Alice likes pizza.", "Bob moved to Oslo."]


@pytest.fixture
def fake() -> Iterator[FakeReranker]:
    with running(FakeReranker(hang_s=2.0)) as f:
        yield f


def make(fake: FakeReranker, api: str = "cohere", **kw: Any) -> HttpReranker:
    opts: dict[str, Any] = {"api_key": None, "model": None, "timeout_s": 1.0, "max_doc_chars": 1000, **kw}
    return HttpReranker(url=fake.url + PATHS[api], api=api, **opts)


def assert_ours(err: ProviderError) -> None:
    msg = str(err)
    assert msg.startswith("the reranker"), msg
    assert err.public
    for leak in (KEY, "SECRET-RERANK-TEXT", "scripted failure", "127.0.0.1", "hunter2"):
        assert leak not in msg


# ----------------------------------------------------------------------------------------------
# each shape's request body, exactly
# ----------------------------------------------------------------------------------------------
async def test_cohere_body_and_reply() -> None:
    with running(FakeReranker(api_key=KEY)) as fake:
        r = make(fake, api_key=KEY, model="rerank-v3.5")
        out = await r.rerank("alice lisbon", DOCS, top_n=2)
        await r.aclose()
    req = fake.requests[0]
    assert req["path"] == "/v1/rerank"
    assert req["body"] == {"model": "rerank-v3.5", "query": "alice lisbon", "documents": DOCS, "top_n": 2}
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    assert req["headers"]["content-type"] == "application/json"
    assert r.name == "cohere"
    # best first; the server cut to top_n
    assert [s.index for s in out] == [0, 1]
    assert all(isinstance(s, RerankScore) and 0 <= s.score <= 1 for s in out)
    assert out[0].score > out[1].score


async def test_voyage_body_says_top_k(fake: FakeReranker) -> None:
    r = make(fake, "voyage", model="rerank-2")
    out = await r.rerank("alice pizza", DOCS, top_n=1)
    await r.aclose()
    assert fake.requests[0]["body"] == {"model": "rerank-2", "query": "alice pizza", "documents": DOCS, "top_k": 1}
    assert [s.index for s in out] == [1]


async def test_tei_body_has_texts_and_no_top_n_and_its_bare_list_is_read(fake: FakeReranker) -> None:
    r = make(fake, "tei")
    out = await r.rerank("bob oslo", DOCS, top_n=1)
    await r.aclose()
    req = fake.requests[0]
    assert req["body"] == {"query": "bob oslo", "texts": DOCS, "raw_scores": False, "truncate": True}
    assert "authorization" not in req["headers"]  # no key configured: no header
    # TEI cannot cut: every document comes back scored, best first
    assert [s.index for s in out] == [2, 0, 1]


async def test_model_is_left_out_when_unset_and_texts_are_cut(fake: FakeReranker) -> None:
    r = make(fake, max_doc_chars=5)
    await r.rerank("q" * (MAX_QUERY_CHARS + 50), ["abcdefgh", "ab"], top_n=2)
    await r.aclose()
    body = fake.requests[0]["body"]
    assert "model" not in body
    assert body["documents"] == ["abcde", "ab"]
    assert body["query"] == "q" * MAX_QUERY_CHARS


async def test_one_connection_is_reused(fake: FakeReranker) -> None:
    r = make(fake)
    for _ in range(3):
        await r.rerank("alice", DOCS, top_n=3)
    await r.aclose()
    assert len(fake.requests) == 3


# ----------------------------------------------------------------------------------------------
# reading replies leniently
# ----------------------------------------------------------------------------------------------
def scores(value: Any, n: int = 3) -> list[tuple[int, float]]:
    return [(s.index, s.score) for s in parse_reply(json.dumps(value).encode(), n)]


def test_any_of_the_three_reply_shapes_is_read() -> None:
    items = [{"index": 2, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.2}]
    assert scores({"results": items}) == [(2, 0.9), (0, 0.2)]
    assert scores({"data": items}) == [(2, 0.9), (0, 0.2)]
    assert scores([{"index": 1, "score": 0.7}, {"index": 0, "score": 0.8}]) == [(0, 0.8), (1, 0.7)]
    # Cohere v1 and Jina echo the document; vLLM adds id/usage: ignored
    echoed = {"index": 1, "relevance_score": 0.5, "document": {"text": "t"}}
    assert scores({"id": "x", "usage": {}, "results": [echoed]}) == [(1, 0.5)]


def test_bad_items_are_dropped_and_the_rest_kept() -> None:
    items = [
        {"index": 0, "relevance_score": 0.4},
        {"index": 7, "relevance_score": 0.9},  # not a document sent
        {"index": -1, "relevance_score": 0.9},
        {"index": True, "relevance_score": 0.9},  # a bool is not an index
        {"index": "1", "relevance_score": 0.9},
        {"index": 1, "relevance_score": float("nan")},
        {"index": 2},
        "junk",
        {"index": 0, "relevance_score": 0.99},  # repeated: the first one counts
        {"index": 2, "relevance_score": 0.1},
    ]
    assert scores({"results": items}) == [(0, 0.4), (2, 0.1)]


def test_scores_outside_0_1_keep_their_order_on_a_0_1_scale() -> None:
    out = scores([{"index": 0, "score": -2.0}, {"index": 1, "score": 3.5}, {"index": 2, "score": 0.5}])
    assert [i for i, _ in out] == [1, 2, 0]
    assert all(0 < s < 1 for _, s in out)
    assert out[0][1] == pytest.approx(1 / (1 + math.exp(-3.5)), abs=1e-6)


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>bad gateway</html>",
        b"",
        b'{"results": []}',
        b'{"results": [{"index": 9, "relevance_score": 0.5}]}',
        b'{"message": "ok"}',
        b"42",
    ],
)
def test_a_reply_with_nothing_usable_is_invalid(raw: bytes) -> None:
    with pytest.raises(ProviderInvalidReply) as exc:
        parse_reply(raw, 3)
    assert_ours(exc.value)


# ----------------------------------------------------------------------------------------------
# failures, in our words
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (500, ProviderUnavailable, "answered HTTP 500"),
        (503, ProviderUnavailable, "answered HTTP 503"),
        (429, ProviderUnavailable, "answered HTTP 429"),
        (400, ProviderRejected, "refused the request (HTTP 400)"),
        (404, ProviderRejected, "refused the request (HTTP 404)"),
    ],
)
async def test_error_statuses(fake: FakeReranker, status: int, error: type[ProviderError], words: str) -> None:
    fake.fail_next, fake.fail_status = 1, status
    r = make(fake, api_key=KEY)
    with pytest.raises(error) as exc:
        await r.rerank("alice", DOCS, top_n=3)
    await r.aclose()
    assert words in str(exc.value)
    assert_ours(exc.value)


async def test_a_wrong_key_is_rejected_with_a_hint() -> None:
    with running(FakeReranker(api_key=KEY)) as fake:
        r = make(fake, api_key="wrong-key-hunter2")
        with pytest.raises(ProviderRejected) as exc:
            await r.rerank("alice", DOCS, top_n=3)
        await r.aclose()
    assert "MEMSERVER_RERANK__API_KEY" in str(exc.value)
    assert_ours(exc.value)


async def test_a_request_the_server_does_not_understand_is_rejected(fake: FakeReranker) -> None:
    """A Cohere-shaped body sent to TEI's route (the wrong MEMSERVER_RERANK__API) is a 422 there."""
    r = HttpReranker(url=fake.url + "/rerank", api="cohere", api_key=None, model=None, timeout_s=1, max_doc_chars=99)
    with pytest.raises(ProviderRejected) as exc:
        await r.rerank("alice", DOCS, top_n=3)
    await r.aclose()
    assert "HTTP 422" in str(exc.value)
    assert "MEMSERVER_RERANK__API" in str(exc.value)


async def test_a_reply_that_is_not_json_is_invalid(fake: FakeReranker) -> None:
    fake.malformed_next = 1
    r = make(fake)
    with pytest.raises(ProviderInvalidReply) as exc:
        await r.rerank("alice", DOCS, top_n=3)
    await r.aclose()
    assert_ours(exc.value)


async def test_a_hanging_server_times_out(fake: FakeReranker) -> None:
    fake.hang_next = 1
    r = make(fake, timeout_s=0.3)
    with pytest.raises(ProviderTimeout) as exc:
        await r.rerank("alice", DOCS, top_n=3)
    await r.aclose()
    assert "did not answer within 0.3 s" in str(exc.value)
    assert_ours(exc.value)


async def test_a_closed_port_is_unavailable() -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}/v1/rerank"  # nothing listens there
    r = HttpReranker(url=url, api="cohere", api_key=KEY, model=None, timeout_s=1.0, max_doc_chars=100)
    with pytest.raises(ProviderUnavailable) as exc:
        await r.rerank("alice", DOCS, top_n=3)
    await r.aclose()
    assert "could not be reached" in str(exc.value)
    assert_ours(exc.value)


async def test_a_redirect_is_not_followed() -> None:
    class Redirecting(FakeReranker):
        def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
            self.requests.append({"path": path})
            return 307, b"{}"

    with running(Redirecting()) as fake:
        r = make(fake)
        with pytest.raises(ProviderRejected) as exc:
            await r.rerank("alice", DOCS, top_n=3)
        await r.aclose()
    assert "HTTP 307" in str(exc.value)
    assert len(fake.requests) == 1


async def test_an_oversized_reply_is_invalid() -> None:
    class Flooding(FakeReranker):
        def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
            return 200, b'{"results": [' + b'{"index": 0, "relevance_score": 0.5},' * 200_000 + b"{}]}"

    with running(Flooding()) as fake:
        r = make(fake)
        with pytest.raises(ProviderInvalidReply) as exc:
            await r.rerank("alice", DOCS, top_n=3)
        await r.aclose()
    assert "too large" in str(exc.value)
