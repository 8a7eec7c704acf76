"""`rerank: true` over HTTP: a relevance reranker's order replaces the hybrid order (a `/rerank` server or the
LLM, listwise), the threshold is applied first, any failure answers 200 in hybrid order with the reason on
every hit, a breaker stops calling a failing reranker, and without a reranker the order is diversified and
labelled so."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, served
from tests.api.helpers import add_verbatim, token_client
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_server import running as running_llm
from tests.fakes.rerank_server import FakeReranker, running

V3 = "/v3/memories/search/"
COOLDOWN_S = 2.0
FACTS = [
    "Alice moved to Lisbon last spring for a job at a bakery.",
    "Alice's favourite food is pizza with mozzarella.",
    "Alice is allergic to peanuts.",
    "Alice plays the cello in a small orchestra.",
    "Alice drives an old red bicycle to work.",
]


@pytest.fixture(scope="module")
def reranker() -> Iterator[FakeReranker]:
    with running(FakeReranker(hang_s=3.0)) as fake:
        yield fake


@pytest.fixture(scope="module")
def http_server(
    database_url: str, reranker: FakeReranker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("rerank-http") / "memserver.log"
    with served(
        database_url,
        log,
        MEMSERVER_RERANK__PROVIDER="http",
        MEMSERVER_RERANK__URL=reranker.url + "/v1/rerank",
        MEMSERVER_RERANK__API_KEY="rk-secret-never-shown",
        MEMSERVER_RERANK__TIMEOUT_S="0.5",
        MEMSERVER_RERANK__BREAKER_FAILURES="3",
        MEMSERVER_RERANK__BREAKER_COOLDOWN_S=str(COOLDOWN_S),
    ) as server:
        yield server


@pytest.fixture
def fake(reranker: FakeReranker) -> Iterator[FakeReranker]:
    reranker.reset()
    yield reranker
    reranker.reset()


@pytest.fixture
def client(http_server: LiveServer, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    with token_client(http_server.url, tenant[1]) as c:
        yield c


def search(c: httpx.Client, query: str, path: str = V3, **body: Any) -> list[dict[str, Any]]:
    r = c.post(path, json={"query": query, "filters": {"user_id": "alice"}, "threshold": 0, **body})
    assert r.status_code == 200, r.text
    data = r.json()
    return data if isinstance(data, list) else data["results"]


def prefer(order: list[str]) -> Callable[[str, list[str]], list[float]]:
    """A scripted reranker that scores the texts of `order` 0.9, 0.8, ... and any other text 0.01."""
    return lambda q, docs: [round(0.9 - 0.1 * order.index(d), 6) if d in order else 0.01 for d in docs]


def memories(hits: list[dict[str, Any]]) -> list[str]:
    return [h["memory"] for h in hits]


def recovers(c: httpx.Client, fake: FakeReranker) -> None:
    """One search the reranker answers: the breaker's count of consecutive failures starts again."""
    fake.script = None
    assert search(c, "Where does Alice live?", rerank=True)[0]["reranker"] == "cohere"


# ----------------------------------------------------------------------------------------------
# a /rerank server
# ----------------------------------------------------------------------------------------------
def test_relevance_order_replaces_the_hybrid_order(client: httpx.Client, fake: FakeReranker) -> None:
    add_verbatim(client, *FACTS)
    plain = search(client, "What does Alice like?")
    assert all("reranker" not in h and "rerank" not in h["score_breakdown"] for h in plain)
    assert fake.requests == []  # rerank=false never calls the reranker
    wanted = list(reversed(memories(plain)))
    fake.script = prefer(wanted)
    reranked = search(client, "What does Alice like?", rerank=True)
    assert memories(reranked) == wanted
    sent = fake.requests[-1]["body"]
    assert sent["query"] == "What does Alice like?"
    assert sent["documents"] == memories(plain)  # the hybrid order, under the threshold
    assert sent["top_n"] == 5  # top_k 10, but only 5 hits
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer rk-secret-never-shown"
    by_id = {h["id"]: h for h in plain}
    for i, hit in enumerate(reranked):
        assert hit["reranker"] == "cohere"
        assert hit["rerank_error"] is None
        assert hit["score_breakdown"]["rerank"] == pytest.approx(0.9 - 0.1 * i)
        # `score` keeps its meaning: the hybrid score, the same with or without rerank
        assert hit["score"] == by_id[hit["id"]]["score"]
        assert all(isinstance(v, (int, float)) for v in hit["score_breakdown"].values())
    assert "rk-secret-never-shown" not in json.dumps(reranked)


def test_the_pool_is_top_n_or_top_k_and_top_k_is_returned(client: httpx.Client, fake: FakeReranker) -> None:
    add_verbatim(client, *[f"Alice noted fact number {i} about her garden." for i in range(40)])
    assert len(search(client, "garden facts", rerank=True, top_k=5)) == 5
    assert len(fake.requests[-1]["body"]["documents"]) == 30  # MEMSERVER_RERANK__TOP_N
    assert fake.requests[-1]["body"]["top_n"] == 5
    assert len(search(client, "garden facts", rerank=True, top_k=35)) == 35
    assert len(fake.requests[-1]["body"]["documents"]) == 35
    assert fake.requests[-1]["body"]["top_n"] == 35


def test_the_threshold_applies_before_reranking(client: httpx.Client, fake: FakeReranker) -> None:
    add_verbatim(client, *FACTS)
    plain = search(client, "Where does Alice live and work?")
    cut = plain[2]["score"]
    kept = [h["memory"] for h in plain if h["score"] >= cut]
    fake.script = prefer(list(reversed(memories(plain))))  # the reranker likes the weakest hits best
    reranked = search(client, "Where does Alice live and work?", rerank=True, threshold=cut)
    assert fake.requests[-1]["body"]["documents"] == kept
    assert sorted(memories(reranked)) == sorted(kept)  # a reranker never brings back a hit under the threshold
    assert memories(reranked) == list(reversed(kept))


def test_v1_and_v2_hits_are_reranked_too(client: httpx.Client, fake: FakeReranker) -> None:
    add_verbatim(client, *FACTS)
    fake.script = prefer([FACTS[3], FACTS[0]])
    for path, body in (
        ("/v1/memories/search/", {"user_id": "alice"}),
        ("/v2/memories/search/", {"filters": {"user_id": "alice"}}),
    ):
        r = client.post(path, json={"query": "Alice", "rerank": True, "top_k": 2, "threshold": 0, **body})
        assert r.status_code == 200, r.text
        hits = r.json()
        assert isinstance(hits, list)
        assert memories(hits) == [FACTS[3], FACTS[0]]
        assert {h["reranker"] for h in hits} == {"cohere"}


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"fail_next": 1, "fail_status": 503}, "the reranker answered HTTP 503"),
        (
            {"fail_next": 1, "fail_status": 401},
            "the reranker refused our credentials (HTTP 401); check MEMSERVER_RERANK__API_KEY",
        ),
        ({"hang_next": 1}, "the reranker did not answer within 0.5 s"),
        ({"malformed_next": 1}, "the reranker's reply could not be read"),
        ({"script": lambda q, docs: [float("nan")] * len(docs)}, "the reranker's reply could not be read"),
    ],
)
def test_a_failing_reranker_answers_200_in_hybrid_order_with_the_reason(
    client: httpx.Client, http_server: LiveServer, fake: FakeReranker, fault: dict[str, Any], reason: str
) -> None:
    add_verbatim(client, *FACTS)
    plain = search(client, "Where does Alice live?")
    for k, v in fault.items():
        setattr(fake, k, v)
    r = client.post(
        V3, json={"query": "Where does Alice live?", "filters": {"user_id": "alice"}, "threshold": 0, "rerank": True}
    )
    assert r.status_code == 200, r.text
    hits = r.json()["results"]
    assert [h["id"] for h in hits] == [h["id"] for h in plain]  # hybrid order, not diversified
    for hit in hits:
        assert hit["reranker"] == "none"
        assert hit["rerank_error"] == reason
        assert "rerank" not in hit["score_breakdown"]
    assert "SECRET-RERANK-TEXT" not in r.text
    rid = r.headers["x-request-id"]
    lines = [line for line in http_server.log.read_text().splitlines() if rid in line]
    assert any("WARNING" in line and reason in line for line in lines), lines
    assert not any("SECRET-RERANK-TEXT" in line or "rk-secret" in line for line in lines)
    recovers(client, fake)


def test_the_breaker_stops_calling_a_failing_reranker(client: httpx.Client, fake: FakeReranker) -> None:
    add_verbatim(client, *FACTS)
    fake.fail_next, fake.fail_status = 3, 500
    for _ in range(3):
        assert search(client, "Alice", rerank=True)[0]["rerank_error"] == "the reranker answered HTTP 500"
    calls = len(fake.requests)
    started = time.monotonic()
    paused = search(client, "Alice", rerank=True)
    assert len(fake.requests) == calls  # not called while the breaker is open
    assert paused[0]["reranker"] == "none"
    assert paused[0]["rerank_error"] == f"the reranker is paused for {COOLDOWN_S:g} s after 3 consecutive failures"
    time.sleep(max(0.0, COOLDOWN_S - (time.monotonic() - started)) + 0.3)
    assert search(client, "Alice", rerank=True)[0]["reranker"] == "cohere"  # tried again, and it answers
    assert len(fake.requests) == calls + 1


def test_fallbacks_are_counted(client: httpx.Client, http_server: LiveServer, fake: FakeReranker) -> None:
    add_verbatim(client, *FACTS)
    fake.fail_next, fake.fail_status = 1, 502
    search(client, "Alice", rerank=True)
    recovers(client, fake)
    text = httpx.get(f"{http_server.url}/metrics", timeout=30).text
    assert 'memserver_rerank_fallbacks_total{reason="provider_unavailable"}' in text
    assert 'memserver_provider_duration_seconds_count{kind="reranker",outcome="ok",provider="cohere"}' in text


# ----------------------------------------------------------------------------------------------
# the other shapes, selected by MEMSERVER_RERANK__API
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("api", "path"), [("tei", "/rerank"), ("voyage", "/voyage/v1/rerank")])
def test_each_shape_reranks_end_to_end(
    api: str,
    path: str,
    database_url: str,
    reranker: FakeReranker,
    fake: FakeReranker,
    make_tenant: Callable[[], tuple[str, str]],
    tmp_path: Any,
) -> None:
    settings = {"MEMSERVER_RERANK__PROVIDER": "http", "MEMSERVER_RERANK__URL": reranker.url + path}
    with (
        served(database_url, tmp_path / "memserver.log", MEMSERVER_RERANK__API=api, **settings) as server,
        token_client(server.url, make_tenant()[1]) as c,
    ):
        add_verbatim(c, *FACTS)
        fake.script = prefer([FACTS[4], FACTS[2]])
        hits = search(c, "Alice", rerank=True, top_k=2)
    assert memories(hits) == [FACTS[4], FACTS[2]]
    assert {h["reranker"] for h in hits} == {api}
    assert fake.requests[-1]["path"] == path


# ----------------------------------------------------------------------------------------------
# the LLM, listwise
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with running_llm(FakeOpenAI(hang_s=3.0)) as f:
        yield f


@pytest.fixture(scope="module")
def llm_server(database_url: str, llm: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with served(
        database_url,
        tmp_path_factory.mktemp("rerank-llm") / "memserver.log",
        MEMSERVER_LLM__BASE_URL=llm.url,
        MEMSERVER_LLM__MODEL="scripted",
        MEMSERVER_LLM__MAX_RETRIES="0",
        MEMSERVER_RERANK__PROVIDER="llm",
        MEMSERVER_RERANK__LLM_TOP_N="4",
        MEMSERVER_RERANK__LLM_TIMEOUT_S="1",
        MEMSERVER_RERANK__BREAKER_FAILURES="100",
        MEMSERVER_USAGE__FLUSH_INTERVAL_S="0.2",
    ) as server:
        yield server


@pytest.fixture
def llm_client(llm_server: LiveServer, llm: FakeOpenAI, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    llm.chat_replies.clear()
    llm.requests.clear()
    llm.hang_next = 0
    with token_client(llm_server.url, tenant[1]) as c:
        add_verbatim(c, *FACTS)
        llm.requests.clear()
        yield c


def test_the_llm_ranks_the_top_n_in_one_call(llm_client: httpx.Client, llm: FakeOpenAI) -> None:
    plain = memories(search(llm_client, "What does Alice do?"))
    llm.chat_replies = ['{"ranking": [4, 2, 1, 3]}']
    hits = search(llm_client, "What does Alice do?", rerank=True)
    assert memories(hits) == [plain[3], plain[1], plain[0], plain[2], plain[4]]  # the 5th was not shown: it follows
    assert [h["score_breakdown"].get("rerank") for h in hits] == [1.0, 0.75, 0.5, 0.25, None]
    assert {h["reranker"] for h in hits} == {"llm"}
    (request,) = llm.chat_requests()
    messages = request["body"]["messages"]
    assert messages[0]["role"] == "system"
    assert "You rank stored memories" in messages[0]["content"]
    user = messages[-1]["content"]
    assert user.startswith("Query: What does Alice do?\n\nMemories:\n1. " + plain[0])
    assert f"4. {plain[3]}" in user
    assert plain[4] not in user  # MEMSERVER_RERANK__LLM_TOP_N=4


def test_an_llm_ranking_counts_in_the_projects_usage(llm_client: httpx.Client, llm: FakeOpenAI) -> None:
    """The listwise call is an LLM call like any other: the project's usage per day counts it and its tokens."""
    llm.chat_replies = ['{"ranking": [2, 1]}']
    search(llm_client, "What does Alice do?", rerank=True)
    deadline, totals = time.monotonic() + 10, {}
    while time.monotonic() < deadline:  # counted in memory, added to the table every 0.2 s
        totals = llm_client.get("/v1/memserver/usage/").json()["totals"]
        if totals.get("llm_calls"):
            break
        time.sleep(0.1)
    assert totals["llm_calls"] == 1, totals
    assert totals["prompt_tokens"] > 0, totals


def test_no_hit_or_one_hit_costs_no_call(llm_client: httpx.Client, llm: FakeOpenAI) -> None:
    assert search(llm_client, "Alice", rerank=True, threshold=0.99) == []
    plain = search(llm_client, "Alice plays the cello")
    between = (plain[0]["score"] + plain[1]["score"]) / 2
    (hit,) = search(llm_client, "Alice plays the cello", rerank=True, threshold=between)
    assert (hit["id"], hit["reranker"], hit["score_breakdown"]["rerank"]) == (plain[0]["id"], "llm", 1.0)
    assert llm.chat_requests() == []


def test_invented_and_repeated_refs_are_ignored(llm_client: httpx.Client, llm: FakeOpenAI) -> None:
    plain = memories(search(llm_client, "Alice"))
    llm.chat_replies = ['{"ranking": [9, 3, 3, 0]}']
    hits = search(llm_client, "Alice", rerank=True)
    assert memories(hits) == [plain[2], plain[0], plain[1], plain[3], plain[4]]
    assert hits[0]["rerank_error"] is None
    assert hits[0]["score_breakdown"]["rerank"] == 1.0
    assert hits[1]["score_breakdown"]["rerank"] == 0.0  # shown and left out


@pytest.mark.parametrize(
    ("replies", "hang", "reason"),
    [
        (["I cannot rank these.", "Still no."], 0, "the LLM reranker's reply could not be read"),
        (['{"ranking": [7, 8]}', '{"ranking": [9]}'], 0, "the LLM reranker's reply could not be read"),
        (['{"ranking": []}'], 0, "the LLM reranker ranked no memory"),
        ([], 1, "the LLM reranker did not answer within 1 s"),
    ],
)
def test_an_unusable_llm_ranking_falls_back(
    llm_client: httpx.Client, llm: FakeOpenAI, replies: list[str], hang: int, reason: str
) -> None:
    plain = [h["id"] for h in search(llm_client, "Alice")]
    llm.chat_replies, llm.hang_next = list(replies), hang
    hits = search(llm_client, "Alice", rerank=True)
    assert [h["id"] for h in hits] == plain
    assert {(h["reranker"], h["rerank_error"]) for h in hits} == {("none", reason)}


# ----------------------------------------------------------------------------------------------
# neither configured: diversification, labelled
# ----------------------------------------------------------------------------------------------
def test_without_a_reranker_rerank_diversifies_and_says_so(api: httpx.Client) -> None:
    add_verbatim(
        api,
        "I love Italian food, especially pasta.",
        "I love Italian food, especially pasta carbonara.",
        "I love Italian food, especially fresh pasta.",
        "Italian restaurants are my favourite for dinner.",
    )
    plain = search(api, "Italian food pasta", top_k=3)
    assert "reranker" not in plain[0]
    hits = search(api, "Italian food pasta", rerank=True, top_k=3)
    assert memories(hits)[0] == plain[0]["memory"]
    assert memories(hits)[1] == "Italian restaurants are my favourite for dinner."  # not a near-duplicate
    assert {(h["reranker"], h["rerank_error"]) for h in hits} == {("diversity", None)}
    assert hits[0]["score_breakdown"]["diversity"] == 0.0
    assert hits[2]["score_breakdown"]["diversity"] > 0.1  # how much it was demoted for its overlap
    assert all("rerank" not in h["score_breakdown"] for h in hits)
