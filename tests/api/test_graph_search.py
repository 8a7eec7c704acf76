"""Graph-aware search end to end: two memserver processes on one database, graph-aware search off (the
default) and on (`MEMSERVER_SEARCH__GRAPH_WEIGHT`), the scripted model writing the graph, the real local
embedder. The memories linked to an entity only through a relation carry no name of it in their text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, served
from tests.api.helpers import token_client
from tests.api.scripted_llm import fact, fake, llm, llm_env, llm_server
from tests.api.test_graph import add_graph, rel, say, shown_relations
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["fake", "llm", "llm_server"]  # the scripted model's fixtures

WEIGHT = 2.0  # large enough that one relation outweighs a distractor's name and words (the mechanism, not the tuning)


@pytest.fixture(scope="module")
def graph_server(database_url: str, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with served(
        database_url,
        tmp_path_factory.mktemp("graph-search-server") / "memserver.log",
        **llm_env(fake, MEMSERVER_SEARCH__GRAPH_WEIGHT=str(WEIGHT), MEMSERVER_SEARCH__GRAPH_HOPS="2"),
    ) as server:
        yield server


@pytest.fixture
def client(llm_server: LiveServer, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    """Writes, and searches with graph-aware search off."""
    with token_client(llm_server.url, tenant[1]) as c:
        yield c


@pytest.fixture
def on(graph_server: LiveServer, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    """The same project, searched with graph-aware search on."""
    with token_client(graph_server.url, tenant[1]) as c:
        yield c


def add_fact(client: httpx.Client, llm: FakeOpenAI, text: str, *relations: dict[str, Any]) -> None:
    say(llm, lambda p: [fact(text, relations=list(relations))])
    add_graph(client, text)


def add_plain(client: httpx.Client, text: str, user_id: str = "alice") -> None:
    r = client.post(
        "/v3/memories/add/",
        json={"messages": [{"role": "user", "content": text}], "user_id": user_id, "infer": False},
    )
    assert r.status_code == 200, r.text


def ranked(client: httpx.Client, query: str, user_id: str = "alice") -> list[dict[str, Any]]:
    r = client.post(
        "/v3/memories/search/", json={"query": query, "filters": {"user_id": user_id}, "top_k": 50, "threshold": 0}
    )
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def position(hits: list[dict[str, Any]], text: str) -> int:
    return next(i for i, h in enumerate(hits) if h["memory"] == text)


def graph_of(hits: list[dict[str, Any]]) -> Callable[[str], float | None]:
    by_text = {h["memory"]: h["score_breakdown"] for h in hits}
    return lambda text: by_text[text].get("graph") if text in by_text else None


LINKED = "Leads the Zorblax project"
DISTRACTORS = ["maria said the weather was cold", "maria likes blue cars", "maria went running"]


def test_a_memory_linked_to_the_named_entity_only_by_a_relation_ranks_higher_with_graph_search(
    client: httpx.Client, on: httpx.Client, llm: FakeOpenAI
) -> None:
    add_fact(client, llm, LINKED, rel("Maria", "leads", "Zorblax", target_type="project"))
    for text in DISTRACTORS:  # they name Maria in words: name and keyword evidence, but no relation
        add_plain(client, text)
    off_hits, on_hits = ranked(client, "What does Maria do?"), ranked(on, "What does Maria do?")
    assert position(on_hits, LINKED) < position(off_hits, LINKED)
    assert position(on_hits, LINKED) == 0
    assert all("graph" not in h["score_breakdown"] for h in off_hits)  # off: no component, no graph query
    assert graph_of(on_hits)(LINKED) == pytest.approx(WEIGHT)  # hop 0, the scope's only relation: idf 1
    assert all(graph_of(on_hits)(t) == 0.0 for t in DISTRACTORS)  # present, 0, for hits without one
    on_hit = next(h for h in on_hits if h["memory"] == LINKED)
    off_hit = next(h for h in off_hits if h["memory"] == LINKED)
    assert on_hit["score"] > off_hit["score"]
    # a query naming no entity of the graph is unchanged
    assert ranked(on, "what is the weather like") == ranked(client, "what is the weather like")


def test_only_relations_that_hold_now_contribute(client: httpx.Client, on: httpx.Client, llm: FakeOpenAI) -> None:
    add_fact(client, llm, LINKED, rel("Maria", "leads", "Zorblax", target_type="project"))
    assert graph_of(ranked(on, "What does Maria do?"))(LINKED) == pytest.approx(WEIGHT)

    def moved(prompt: str) -> list[dict[str, Any]]:
        ref = shown_relations(prompt)["Maria -[leads]-> Zorblax"]
        return [fact("Leads the Quux project", relations=[rel("Maria", "leads", "Quux", replaces=[ref])])]

    say(llm, moved)
    add_graph(client, "Maria now leads Quux.")
    graph = graph_of(ranked(on, "What does Maria do?"))
    assert graph(LINKED) == 0.0  # its relation was retired
    assert graph("Leads the Quux project") == pytest.approx(WEIGHT)  # Maria's one current relation: idf 1


def test_the_walk_stops_after_the_configured_hops(client: httpx.Client, on: httpx.Client, llm: FakeOpenAI) -> None:
    # Maria -> Zorblax -> Acme -> Tromso: the third relation is three hops from Maria
    add_fact(client, llm, LINKED, rel("Maria", "leads", "Zorblax", target_type="project"))
    add_fact(client, llm, "Zorblax is funded by Acme", rel("Zorblax", "funded_by", "Acme", source_type="project"))
    add_fact(client, llm, "Acme is based in Tromso", rel("Acme", "based_in", "Tromso", source_type="organization"))
    graph = graph_of(ranked(on, "What does Maria do?"))
    one, two, three = graph(LINKED), graph("Zorblax is funded by Acme"), graph("Acme is based in Tromso")
    assert one is not None
    assert two is not None
    assert one > two > 0  # a hop further counts less
    assert not three  # absent or 0.0
    # named directly, Acme's own relations are hop 0
    assert graph_of(ranked(on, "Where is Acme?"))("Acme is based in Tromso")


def test_another_projects_graph_never_contributes(
    client: httpx.Client, on: httpx.Client, llm: FakeOpenAI, graph_server: LiveServer, new_api_key: Callable[[], str]
) -> None:
    add_fact(client, llm, LINKED, rel("Maria", "leads", "Zorblax", target_type="project"))
    with httpx.Client(base_url=graph_server.url, headers={"Authorization": f"Token {new_api_key()}"}) as other_on:
        add_plain(other_on, LINKED)  # the same user id and text, no graph
        hits = ranked(other_on, "What does Maria do?")
        assert [h["memory"] for h in hits] == [LINKED]
        assert "graph" not in hits[0]["score_breakdown"]  # the query named no entity of this project's graph
    # nor another user's graph in the same project
    add_plain(client, LINKED, user_id="bob")
    hits = ranked(on, "What does Maria do?", user_id="bob")
    assert [h["memory"] for h in hits] == [LINKED]
    assert "graph" not in hits[0]["score_breakdown"]
