"""Search over HTTP: response shapes per generation, scores on one 0..1 scale, and what hybrid
retrieval adds (keyword-only hits, names, dates, conversational neighbours, keyword_search, rerank)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, served
from tests.api.helpers import add_verbatim, token_client

V3 = "/v3/memories/search/"


def add(api: httpx.Client, texts: list[str], **body: Any) -> list[str]:
    return add_verbatim(api, *texts, **body)


def add_each(api: httpx.Client, texts: list[str], **body: Any) -> list[str]:
    """One add per text, in order (a conversation arriving turn by turn)."""
    return [add(api, [t], **body)[0] for t in texts]


def search(api: httpx.Client, query: str, user: str = "u", **body: Any) -> list[dict[str, Any]]:
    r = api.post(V3, json={"query": query, "filters": {"user_id": user}, "threshold": 0, **body})
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


FACTS = [
    "I moved to Austin last month for a new job at a robotics startup.",
    "My sister Anna is a nurse in Lisbon.",
    "I am allergic to peanuts and shellfish.",
    "My favourite band is Radiohead; I saw them live in 2016.",
    "I drive a blue 2012 Honda Civic.",
]


# ----------------------------------------------------------------------------------------------
# shapes per generation
# ----------------------------------------------------------------------------------------------
def test_v3_search_returns_scored_hits_best_first(api: httpx.Client) -> None:
    ids = add(api, FACTS, user_id="u", run_id="r1")
    r = api.post(V3, json={"query": "Which city did I move to for my job?", "filters": {"user_id": "u"}})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results[0]["id"] == ids[0]
    scores = [h["score"] for h in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    hit = results[0]
    assert hit["memory"] == FACTS[0]
    assert hit["run_id"] == hit["session_id"] == "r1"
    assert {"semantic", "bm25", "entity"} <= set(hit["score_breakdown"])
    assert "relations" not in r.json()


def test_v3_rejects_top_level_entity_ids(api: httpx.Client) -> None:
    r = api.post(V3, json={"query": "x", "user_id": "u"})
    assert r.status_code == 400
    assert "filters" in r.json()["detail"]


def test_v1_search_bare_array_and_v11_envelope_with_top_level_ids(api: httpx.Client) -> None:
    ids = add(api, FACTS, user_id="u")
    r = api.post("/v1/memories/search/", json={"query": "peanut allergy", "user_id": "u"})
    assert r.status_code == 200
    assert isinstance(r.json(), list)
    assert r.json()[0]["id"] == ids[2]
    r = api.post("/v1/memories/search/", json={"query": "peanut allergy", "user_id": "u", "output_format": "v1.1"})
    assert set(r.json()) == {"results", "relations"}
    assert r.json()["results"][0]["id"] == ids[2]


def test_v1_and_v2_search_without_an_entity_are_400_with_message(api: httpx.Client) -> None:
    for path in ("/v1/memories/search/", "/v2/memories/search/"):
        r = api.post(path, json={"query": "anything"})
        assert r.status_code == 400
        assert "message" in r.json()
        assert r.json()["detail"]


def test_v2_search_accepts_filters_or_top_level_ids(api: httpx.Client) -> None:
    ids = add(api, FACTS, user_id="u", agent_id="a")
    by_filters = api.post("/v2/memories/search/", json={"query": "my sister", "filters": {"agent_id": "a"}}).json()
    by_ids = api.post("/v2/memories/search/", json={"query": "my sister", "user_id": "u"}).json()
    assert by_filters[0]["id"] == by_ids[0]["id"] == ids[1]


def test_empty_query_and_bad_limits_are_400(api: httpx.Client) -> None:
    add(api, FACTS[:1], user_id="u")
    for body in (
        {"query": "  "},
        {"query": "x", "top_k": 0},
        {"query": "x", "top_k": 1001},
        {"query": "x", "threshold": 1.5},
        {"query": "x", "threshold": -0.1},
        {"query": "x", "retrieval": "magic"},
    ):
        r = api.post(V3, json={"filters": {"user_id": "u"}, **body})
        assert r.status_code == 400, (body, r.text)
        assert r.json()["detail"]


# ----------------------------------------------------------------------------------------------
# top_k, threshold, fields, expiry, shortcuts
# ----------------------------------------------------------------------------------------------
def test_top_k_and_threshold(api: httpx.Client) -> None:
    add(api, FACTS, user_id="u")
    assert len(search(api, "tell me about the user", top_k=2)) == 2
    everything = search(api, "car", top_k=50)
    assert len(everything) == len(FACTS)
    cut = everything[1]["score"]
    kept = api.post(V3, json={"query": "car", "filters": {"user_id": "u"}, "threshold": cut}).json()["results"]
    assert [h["id"] for h in kept] == [h["id"] for h in everything if h["score"] >= cut]
    assert kept[0]["memory"] == FACTS[4]


# Scores for this query over these memories (all one user, so neighbours count) span the defaults' bands:
# several above 0.3, some in [0.1, 0.3), several in (0, 0.1). The test reads them with threshold 0.
BAND_QUERY = "Which instrument does Maria play?"
BAND_TEXTS = [
    "Maria plays the cello in a community orchestra.",
    "The parking garage closes at midnight.",
    "I bought new guitar strings yesterday.",
    "My tax return is due in April.",
    "My brother enjoys jazz.",
    "We repainted the kitchen walls yellow.",
    "The hall was renovated last year.",
    "The printer is out of toner.",
    "Tomatoes grow well in a sunny spot.",
    "A noisy drill woke me up.",
]


def test_default_thresholds_are_v3_0_1_v2_0_3_v1_none(api: httpx.Client) -> None:
    """README: `threshold` defaults to 0.1 on v3, 0.3 on v2 and none on v1."""
    add(api, BAND_TEXTS, user_id="u")
    scored = search(api, BAND_QUERY, top_k=50)  # threshold 0: every memory with its score
    assert len(scored) == len(BAND_TEXTS)
    score = {h["id"]: h["score"] for h in scored}
    weak = {i for i, s in score.items() if 0 < s < 0.1}
    middle = {i for i, s in score.items() if 0.1 <= s < 0.3}
    strong = {i for i, s in score.items() if s >= 0.3}
    # the data must exercise both cut-offs, clear of them (else pick other texts)
    assert weak, score
    assert middle, score
    assert strong, score
    assert all(abs(s - cut) > 0.005 for s in score.values() for cut in (0.1, 0.3)), score

    def ids(body: Any) -> set[str]:
        return {h["id"] for h in (body["results"] if isinstance(body, dict) else body)}

    v3 = api.post(V3, json={"query": BAND_QUERY, "filters": {"user_id": "u"}, "top_k": 50})
    v2 = api.post("/v2/memories/search/", json={"query": BAND_QUERY, "filters": {"user_id": "u"}, "top_k": 50})
    v1 = api.post("/v1/memories/search/", json={"query": BAND_QUERY, "user_id": "u", "limit": 50})
    for r in (v3, v2, v1):
        assert r.status_code == 200, r.text
    assert ids(v3.json()) == strong | middle  # the 0.1-0.3 ones, not those under 0.1
    assert ids(v2.json()) == strong  # neither
    assert ids(v1.json()) == strong | middle | weak  # all of them


def test_default_threshold_keeps_a_result_for_a_generic_question(api: httpx.Client) -> None:
    # The TypeScript SDK's integration suite expects a hit above the default threshold for this.
    add(
        api,
        ["My name is Alex and I love hiking in the mountains.", "I work as a data engineer."],
        user_id="u",
    )
    r = api.post(V3, json={"query": "What do you know about me?", "filters": {"user_id": "u"}})
    assert r.status_code == 200
    assert r.json()["results"], "expected at least one hit above the default threshold (0.1)"
    assert r.json()["results"][0]["score"] > 0.1


def test_fields_projection(api: httpx.Client) -> None:
    add(api, FACTS[:2], user_id="u")
    hit = search(api, "sister", fields=["memory", "score"])[0]
    assert set(hit) == {"id", "memory", "score"}


def test_expired_memories_are_left_out_unless_asked(api: httpx.Client) -> None:
    add(api, ["My passport expired in 2020."], user_id="u", expiration_date="2021-01-01")
    add(api, ["My passport is valid until 2031."], user_id="u")
    assert [h["memory"] for h in search(api, "passport")] == ["My passport is valid until 2031."]
    assert len(search(api, "passport", show_expired=True)) == 2


def test_categories_and_metadata_shortcuts(api: httpx.Client) -> None:
    add(api, ["I play tennis on Sundays."], user_id="u", categories=["sports"], metadata={"src": "chat"})
    add(api, ["I play the piano on Sundays."], user_id="u", categories=["music"], metadata={"src": "form"})
    assert [h["memory"] for h in search(api, "what do I play", categories=["music"])] == [
        "I play the piano on Sundays."
    ]
    assert [h["memory"] for h in search(api, "what do I play", metadata={"src": "chat"})] == [
        "I play tennis on Sundays."
    ]


# ----------------------------------------------------------------------------------------------
# hybrid retrieval
# ----------------------------------------------------------------------------------------------
def test_a_rare_keyword_finds_its_memory_even_when_dense_similarity_does_not(api: httpx.Client) -> None:
    noise = [f"I had a nice {x} today." for x in ("lunch", "walk", "coffee", "chat", "nap", "swim", "dinner")]
    ids = add(api, [*noise, "Paid the Zephyrwind invoice."], user_id="u")
    hybrid = search(api, "zephyrwind", top_k=3)
    assert hybrid[0]["id"] == ids[-1]
    assert hybrid[0]["score_breakdown"]["bm25"] > 0
    semantic = search(api, "zephyrwind", top_k=3, retrieval="semantic")
    assert len(semantic) == 3
    assert all(h["score_breakdown"]["bm25"] == 0 for h in semantic)


def test_words_in_metadata_are_weaker_keyword_evidence_and_ids_in_it_are_none(api: httpx.Client) -> None:
    # separate runs: no conversational neighbours blur the comparison
    in_text = add(api, ["We went hiking in the Alps last summer."], user_id="u", run_id="r1")[0]
    in_meta = add(
        api, ["Booked the cabin for the long weekend."], user_id="u", run_id="r2", metadata={"topic": "hiking trip"}
    )[0]
    neither = add(
        api,
        ["Booked the table for the long weekend."],
        user_id="u",
        run_id="r3",
        metadata={"topic": "dinner", "ticket": "4512", "ref": "D1:3"},
    )[0]
    hits = {h["id"]: h for h in search(api, "hiking")}
    assert hits[in_text]["score_breakdown"]["bm25"] > hits[in_meta]["score_breakdown"]["bm25"] > 0
    assert hits[neither]["score_breakdown"]["bm25"] == 0
    assert hits[in_meta]["score"] > hits[neither]["score"]
    # numbers and ids in metadata values are not words, and keys are not values
    assert search(api, "ticket 4512 D1:3", retrieval="keyword") == []


def test_retrieval_modes_report_their_own_signals(api: httpx.Client) -> None:
    add(api, FACTS, user_id="u")
    keyword = search(api, "Honda Civic", retrieval="keyword")
    assert keyword[0]["memory"] == FACTS[4]
    assert keyword[0]["score_breakdown"]["semantic"] == 0
    semantic = search(api, "Honda Civic", retrieval="semantic")
    assert semantic[0]["memory"] == FACTS[4]
    # semantic-only scores are the cosine similarity itself
    assert semantic[0]["score"] == pytest.approx(semantic[0]["score_breakdown"]["semantic"])


def test_keyword_search_true_doubles_the_weight_of_word_matches(api: httpx.Client) -> None:
    add(api, FACTS, user_id="u")
    plain = {h["id"]: h for h in search(api, "peanuts shellfish")}
    boosted = {h["id"]: h for h in search(api, "peanuts shellfish", keyword_search=True)}
    top = max(plain.values(), key=lambda h: h["score"])
    assert boosted[top["id"]]["score_breakdown"]["bm25"] == pytest.approx(2 * top["score_breakdown"]["bm25"], rel=1e-4)
    assert boosted[top["id"]]["score"] > top["score"]


def test_names_in_the_query_prefer_memories_that_mention_them(api: httpx.Client) -> None:
    add(
        api,
        ["Caroline: I started pottery classes.", "Melanie: I started pottery classes too, for fun."],
        user_id="u",
    )
    hits = search(api, "What classes did Melanie start?")
    assert hits[0]["memory"].startswith("Melanie:")
    assert hits[0]["score_breakdown"]["entity"] > 0
    assert hits[1]["score_breakdown"]["entity"] == 0


def test_dates_in_the_query_prefer_memories_recorded_then(api: httpx.Client) -> None:
    july = int(time.mktime((2023, 7, 5, 12, 0, 0, 0, 0, 0)))
    march = int(time.mktime((2023, 3, 1, 12, 0, 0, 0, 0, 0)))
    march_id = add(api, ["We went camping by the lake."], user_id="u", run_id="s1", timestamp=march)[0]
    july_id = add(api, ["We went camping in the mountains."], user_id="u", run_id="s2", timestamp=july)[0]
    hits = search(api, "Where did we go camping in July 2023?")
    assert hits[0]["id"] == july_id
    assert hits[0]["score_breakdown"]["temporal"] > 0
    assert {h["id"]: h for h in hits}[march_id]["score_breakdown"]["temporal"] == 0


def test_a_memory_shares_relevance_with_its_conversational_neighbours(api: httpx.Client) -> None:
    # The answer ("yes, last weekend") says nothing about the topic; the question before it does.
    convo = [
        "Did you finally visit the aquarium in Monterey?",
        "Yes, last weekend, with my two kids.",
        "How is your new job going?",
        "It is busy but I like my team.",
    ]
    ids = add_each(api, convo, user_id="u")
    other = add(api, ["Yes, I did that last weekend as well."], user_id="someone-else")[0]
    hits = {h["id"]: h for h in search(api, "Who went to the Monterey aquarium?", top_k=10)}
    assert hits[ids[1]]["score_breakdown"]["context"] > 0
    # the neighbour's relevance lifts the answer above the unrelated small talk
    assert hits[ids[1]]["score"] > hits[ids[3]]["score"]
    # another user's memories are never neighbours (nor results)
    assert other not in hits


def test_rerank_keeps_near_duplicates_from_crowding_out_other_facts(api: httpx.Client) -> None:
    add(
        api,
        [
            "I love Italian food, especially pasta.",
            "I love Italian food, especially pasta carbonara.",
            "I love Italian food, especially fresh pasta.",
            "Italian restaurants are my favourite for dinner.",
        ],
        user_id="u",
    )
    plain = [h["memory"] for h in search(api, "Italian food pasta", top_k=2)]
    reranked = [h["memory"] for h in search(api, "Italian food pasta", top_k=2, rerank=True)]
    assert len(plain) == 2
    assert all("especially" in m for m in plain)
    assert reranked[0] == plain[0]
    assert "Italian restaurants are my favourite for dinner." in reranked


@pytest.fixture(scope="module")
def indexed_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that treats any scope over 10 memories as large: candidates from the HNSW and GIN indexes."""
    with served(
        database_url,
        tmp_path_factory.mktemp("indexed-search") / "api.log",
        MEMSERVER_SEARCH__EXACT_SCAN_LIMIT="10",
    ) as server:
        yield server


@pytest.fixture
def indexed(indexed_server: LiveServer, make_tenant: Callable[[], tuple[str, str]]) -> Iterator[httpx.Client]:
    with token_client(indexed_server.url, make_tenant()[1]) as client:
        yield client


def test_large_scopes_take_candidates_from_the_indexes_and_still_find_keyword_hits(indexed: httpx.Client) -> None:
    for i in range(30):
        add(indexed, [f"Routine note number {i} about nothing in particular."], user_id=f"user-{i}", app_id="crm")
    target = add(indexed, ["Customer Quillbrook asked for a refund."], user_id="user-x", app_id="crm")[0]
    r = indexed.post(V3, json={"query": "quillbrook", "filters": {"app_id": "crm"}, "top_k": 3, "threshold": 0})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["id"] == target
    r = indexed.post(V3, json={"query": "refund request", "filters": {"user_id": "*"}, "top_k": 3, "threshold": 0})
    assert r.json()["results"][0]["id"] == target
    # a common word everywhere does not crowd out a rare one
    r = indexed.post(
        V3,
        json={"query": "routine note about quillbrook", "filters": {"user_id": "*"}, "retrieval": "keyword"},
    )
    assert r.status_code == 200, r.text
    assert target in [h["id"] for h in r.json()["results"]]
    # and a dense-only search over a large scope walks the HNSW index with the filter applied
    r = indexed.post(
        V3, json={"query": "refund", "filters": {"app_id": "crm"}, "top_k": 5, "retrieval": "semantic", "threshold": 0}
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["id"] == target
