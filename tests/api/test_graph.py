"""Graph memory end to end: a real memserver process, the real `openai` SDK and the scripted model (see
test_inference.py), the real local embedder, and the Postgres graph store."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, free_port, served
from memserver.embedded_postgres import EmbeddedPostgres
from tests.api.scripted_llm import client, fact, fake, llm, llm_env, llm_server, prompt_of
from tests.fakes.openai_server import FakeOpenAI
from tests.worker.jobs_harness import fresh_database, make_tenant

Relation = dict[str, Any]
__all__ = ["client", "fake", "llm", "llm_server"]  # the scripted model's fixtures


def rel(source: str, relationship: str, target: str, **extra: Any) -> Relation:
    return {
        "source": source,
        "source_type": extra.pop("source_type", "person"),
        "relationship": relationship,
        "target": target,
        "target_type": extra.pop("target_type", "place"),
        **extra,
    }


def shown_relations(prompt: str) -> dict[str, int]:
    """'source -[relationship]-> target' -> the ref the prompt shows it under."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^rel (\d+): (.*?)(?: \(since [\d-]+\))?$", prompt, re.M)}


def say(llm: FakeOpenAI, decide: Callable[[str], list[dict[str, Any]]]) -> None:
    import json

    llm.chat_script = lambda body: json.dumps({"facts": decide(prompt_of(body))})


def add_graph(client: httpx.Client, text: str, *, user_id: str = "alice", **body: Any) -> dict[str, Any]:
    """A processed v1 add (async_mode false, output_format v1.1) with enable_graph."""
    r = client.post(
        "/v1/memories/",
        json={
            "messages": [{"role": "user", "content": text}],
            "user_id": user_id,
            "async_mode": False,
            "output_format": "v1.1",
            "enable_graph": True,
            **body,
        },
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def relations(client: httpx.Client, user_id: str = "alice") -> list[dict[str, Any]]:
    r = client.post("/v2/memories/", json={"filters": {"user_id": user_id}, "enable_graph": True})
    assert r.status_code == 200, r.text
    return list(r.json()["relations"])


def timeline(client: httpx.Client, name: str, **params: Any) -> httpx.Response:
    return client.get(f"/v1/graph/entities/{name}/relations/", params={"user_id": "alice", **params})


def triples(items: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(r["source"], r["relationship"], r["target"]) for r in items}


# ----------------------------------------------------------------------------------------------
# extraction in the same call, and the response shapes
# ----------------------------------------------------------------------------------------------
def test_relations_come_from_the_same_llm_call_and_list_in_the_mem0_shape(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    say(llm, lambda p: [fact("Lives in Lisbon", relations=[rel("alice", "lives in", "Lisbon")])])
    out = add_graph(client, "I live in Lisbon.")
    assert [r["event"] for r in out["results"]] == ["ADD"]
    assert out["relations"] == {
        "added_entities": [[{"source": "alice", "relationship": "lives_in", "target": "Lisbon"}]],
        "deleted_entities": [],
    }
    [call] = llm.chat_requests()  # facts and relations: one call
    system = call["body"]["messages"][0]["content"]
    assert "Graph memory is on" in system
    assert 'the user is the entity "alice"' in prompt_of(call["body"])
    assert relations(client) == [
        {
            "source": "alice",
            "source_type": "person",
            "relationship": "lives_in",
            "target": "Lisbon",
            "target_type": "place",
        }
    ]
    # without enable_graph the list is the bare array, and the prompt carries no graph instructions
    assert isinstance(client.post("/v2/memories/", json={"filters": {"user_id": "alice"}}).json(), list)
    llm.requests.clear()
    say(llm, lambda p: [fact("Likes tea")])
    add_graph(client, "I like tea.", enable_graph=False)
    [plain] = llm.chat_requests()
    assert "Graph" not in prompt_of(plain["body"])


def test_v2_search_returns_scored_relations_of_the_entities_the_query_names(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    say(
        llm,
        lambda p: [
            fact("Sister Maria lives in Porto", relations=[rel("alice", "sister_of", "Maria", target_type="person")]),
        ],
    )
    add_graph(client, "My sister Maria lives in Porto.")
    say(llm, lambda p: [fact("Maria works at Acme", relations=[rel("Maria", "works_at", "Acme")])])
    add_graph(client, "Maria works at Acme.")
    r = client.post(
        "/v2/memories/search/",
        json={"query": "Where does Maria work?", "filters": {"user_id": "alice"}, "enable_graph": True},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"results", "relations"} <= set(body)
    got = {(x["source"], x["relationship"], x["target"]): x for x in body["relations"]}
    assert ("Maria", "works_at", "Acme") in got
    assert set(got[("Maria", "works_at", "Acme")]) == {
        "source",
        "source_type",
        "relationship",
        "target",
        "target_type",
        "score",
    }
    assert got[("Maria", "works_at", "Acme")]["score"] == 1.0
    # v3 ignores enable_graph, as the Platform does
    v3 = client.post(
        "/v3/memories/search/", json={"query": "Maria", "filters": {"user_id": "alice"}, "enable_graph": True}
    )
    assert set(v3.json()) == {"results"}


# ----------------------------------------------------------------------------------------------
# entity resolution
# ----------------------------------------------------------------------------------------------
def test_one_person_under_two_spellings_is_one_entity(client: httpx.Client, llm: FakeOpenAI) -> None:
    friend = {"source_type": "person", "target_type": "person"}
    say(
        llm,
        lambda p: [fact("Friend Jonathan Smith", relations=[rel("alice", "friend_of", "Jonathan Smith", **friend)])],
    )
    add_graph(client, "Jonathan Smith is my friend.")
    say(
        llm,
        lambda p: [
            fact(
                "Jonathon Smith works at Acme",
                relations=[rel("Jonathon Smith", "works_at", "Acme", target_type="organization")],
            )
        ],
    )
    out = add_graph(client, "Jonathon Smith started at Acme.")
    # the new spelling resolves to the existing entity: its relation is written under the known name
    assert out["relations"]["added_entities"] == [
        [{"source": "Jonathan Smith", "relationship": "works_at", "target": "Acme"}]
    ]
    r = timeline(client, "Jonathon Smith")  # found by its alias too
    assert r.status_code == 200, r.text
    [entity] = r.json()["entities"]
    assert entity["name"] == "Jonathan Smith"
    assert entity["aliases"] == ["Jonathon Smith"]
    assert triples(r.json()["relations"]) == {
        ("alice", "friend_of", "Jonathan Smith"),
        ("Jonathan Smith", "works_at", "Acme"),
    }
    # a different person of the same scope stays apart
    say(llm, lambda p: [fact("Friend Jane Doe", relations=[rel("alice", "friend_of", "Jane Doe", **friend)])])
    add_graph(client, "Jane Doe is my friend too.")
    assert timeline(client, "Jane Doe").json()["entities"][0]["name"] == "Jane Doe"


# ----------------------------------------------------------------------------------------------
# invalidation and valid time
# ----------------------------------------------------------------------------------------------
def test_a_contradicted_relation_is_retired_not_deleted_and_stays_answerable_in_time(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    say(
        llm,
        lambda p: [
            fact("Lives in Lisbon since 2020", relations=[rel("alice", "lives_in", "Lisbon", valid_from="2020-01-01")])
        ],
    )
    add_graph(client, "I have lived in Lisbon since 2020.", timestamp=1_700_000_000)

    def moved(prompt: str) -> list[dict[str, Any]]:
        ref = shown_relations(prompt)["alice -[lives_in]-> Lisbon"]
        return [
            fact(
                "Moved to Berlin in March 2025",
                relations=[rel("alice", "lives_in", "Berlin", valid_from="2025-03-01", replaces=[ref])],
            )
        ]

    say(llm, moved)
    out = add_graph(client, "I moved to Berlin in March 2025.")
    assert out["relations"] == {
        "added_entities": [[{"source": "alice", "relationship": "lives_in", "target": "Berlin"}]],
        "deleted_entities": [[{"source": "alice", "relationship": "lives_in", "target": "Lisbon"}]],
    }
    # what holds now
    assert triples(relations(client)) == {("alice", "lives_in", "Berlin")}
    # nothing is lost: both, with when they held and when memserver learnt it
    history = {r["target"]: r for r in timeline(client, "alice").json()["relations"]}
    lisbon, berlin = history["Lisbon"], history["Berlin"]
    assert lisbon["valid_at"].startswith("2020-01-01")
    assert lisbon["invalid_at"].startswith("2025-03-01")
    assert lisbon["expired_at"] is not None
    assert lisbon["invalidated_by"] == berlin["id"]
    assert berlin["valid_at"].startswith("2025-03-01")
    assert (berlin["invalid_at"], berlin["expired_at"]) == (None, None)
    assert lisbon["memory_id"] is not None
    assert lisbon["event_id"] is not None
    # "where did Alice live in 2024?"
    in_2024 = timeline(client, "alice", at="2024-06-01").json()["relations"]
    assert triples(in_2024) == {("alice", "lives_in", "Lisbon")}
    assert triples(timeline(client, "alice", at="2025-06-01").json()["relations"]) == {("alice", "lives_in", "Berlin")}
    assert timeline(client, "alice", at="2019-06-01").json()["relations"] == []


def test_relations_stated_by_an_immutable_memory_are_never_retired_by_inference(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    """An immutable memory is never changed, and neither is what it states: a later fact's `replaces` of one
    of its relations adds the new relation and leaves the immutable one current (both hold, as two memories
    do), while a relation of an ordinary memory is still retired by the same add."""
    say(llm, lambda p: [fact("Blood type is A+", relations=[rel("alice", "has_blood_type", "A+", target_type="x")])])
    add_graph(client, "My blood type is A+.", immutable=True)
    say(llm, lambda p: [fact("Lives in Lisbon", relations=[rel("alice", "lives_in", "Lisbon")])])
    add_graph(client, "I live in Lisbon.")

    def contradicts(prompt: str) -> list[dict[str, Any]]:
        shown = shown_relations(prompt)
        return [
            fact(
                "Blood type is B-",
                relations=[
                    rel(
                        "alice",
                        "has_blood_type",
                        "B-",
                        target_type="x",
                        replaces=[shown["alice -[has_blood_type]-> A+"]],
                    )
                ],
            ),
            fact(
                "Moved to Porto",
                relations=[rel("alice", "lives_in", "Porto", replaces=[shown["alice -[lives_in]-> Lisbon"]])],
            ),
        ]

    say(llm, contradicts)
    out = add_graph(client, "Actually my blood type is B-, and I moved to Porto.")
    assert out["relations"]["deleted_entities"] == [
        [{"source": "alice", "relationship": "lives_in", "target": "Lisbon"}]
    ]
    assert triples(relations(client)) == {
        ("alice", "has_blood_type", "A+"),  # stated by the immutable memory: still current
        ("alice", "has_blood_type", "B-"),
        ("alice", "lives_in", "Porto"),
    }
    kept = next(r for r in timeline(client, "alice").json()["relations"] if r["target"] == "A+")
    assert (kept["invalid_at"], kept["expired_at"], kept["invalidated_by"]) == (None, None, None)


def test_relations_that_can_hold_together_are_both_kept(client: httpx.Client, llm: FakeOpenAI) -> None:
    food = {"target_type": "food"}
    say(llm, lambda p: [fact("Likes pizza", relations=[rel("alice", "likes", "pizza", **food)])])
    add_graph(client, "I like pizza.")
    say(llm, lambda p: [fact("Likes sushi", relations=[rel("alice", "likes", "sushi", **food)])])
    add_graph(client, "I also like sushi.")
    assert triples(relations(client)) == {("alice", "likes", "pizza"), ("alice", "likes", "sushi")}
    # the same relation said again is not written twice
    say(llm, lambda p: [fact("Likes pizza a lot", relations=[rel("alice", "likes", "Pizza", **food)])])
    out = add_graph(client, "Pizza is great.")
    assert out["relations"]["added_entities"] == []


def test_a_replaces_ref_that_was_not_shown_ends_nothing_and_costs_no_second_call(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    say(llm, lambda p: [fact("Lives in Rome", relations=[rel("alice", "lives_in", "Rome", replaces=[7])])])
    out = add_graph(client, "I live in Rome.")
    assert out["relations"]["added_entities"] == [[{"source": "alice", "relationship": "lives_in", "target": "Rome"}]]
    assert len(llm.chat_requests()) == 1  # the bad ref is dropped, not sent back for repair
    [event] = [e for e in client.get("/v1/events/").json()["results"] if "llm_calls" in (e.get("metadata") or {})]
    assert (
        "replaces [7]: not refs of the existing relations shown; removed from a relation" in event["metadata"]["notes"]
    )


# ----------------------------------------------------------------------------------------------
# deletion cascades
# ----------------------------------------------------------------------------------------------
def test_deleting_a_memory_deletes_its_relations_and_the_entities_left_without_any(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    say(
        llm, lambda p: [fact("Works at Acme", relations=[rel("alice", "works_at", "Acme", target_type="organization")])]
    )
    acme = add_graph(client, "I work at Acme.")["results"][0]["id"]
    say(llm, lambda p: [fact("Lives in Oslo", relations=[rel("alice", "lives_in", "Oslo")])])
    add_graph(client, "I live in Oslo.")
    assert client.delete(f"/v1/memories/{acme}/").status_code == 200
    assert triples(relations(client)) == {("alice", "lives_in", "Oslo")}
    assert timeline(client, "Acme").status_code == 404
    assert triples(timeline(client, "alice").json()["relations"]) == {("alice", "lives_in", "Oslo")}


def test_deleting_a_user_or_all_their_memories_leaves_no_graph(client: httpx.Client, llm: FakeOpenAI) -> None:
    for user in ("alice", "bob"):
        say(llm, lambda p, user=user: [fact("Lives in Oslo", relations=[rel(user, "lives_in", "Oslo")])])
        add_graph(client, "I live in Oslo.", user_id=user)
    assert client.delete("/v2/entities/user/alice/").status_code == 200
    assert relations(client, "alice") == []
    assert timeline(client, "alice").status_code == 404
    assert triples(relations(client, "bob")) == {("bob", "lives_in", "Oslo")}
    assert client.delete("/v1/memories/", params={"user_id": "bob"}).status_code == 200
    assert relations(client, "bob") == []
    assert client.get("/v1/graph/entities/Oslo/relations/", params={"user_id": "bob"}).status_code == 404


def test_deleting_a_graph_entity_deletes_its_relations(client: httpx.Client, llm: FakeOpenAI) -> None:
    say(
        llm, lambda p: [fact("Works at Acme", relations=[rel("alice", "works_at", "Acme", target_type="organization")])]
    )
    add_graph(client, "I work at Acme.")
    [acme] = timeline(client, "Acme").json()["entities"]
    assert client.delete(f"/v1/graph/entities/{acme['id']}/").status_code == 200
    assert relations(client) == []
    assert client.delete(f"/v1/graph/entities/{acme['id']}/").status_code == 404


# ----------------------------------------------------------------------------------------------
# tenancy
# ----------------------------------------------------------------------------------------------
def test_another_projects_key_sees_none_of_the_graph(
    client: httpx.Client, llm: FakeOpenAI, llm_server: LiveServer, new_api_key: Callable[[], str]
) -> None:
    say(
        llm, lambda p: [fact("Works at Acme", relations=[rel("alice", "works_at", "Acme", target_type="organization")])]
    )
    add_graph(client, "I work at Acme.")
    [acme] = timeline(client, "Acme").json()["entities"]
    with httpx.Client(
        base_url=llm_server.url, headers={"Authorization": f"Token {new_api_key()}"}, timeout=30
    ) as other:
        assert relations(other) == []
        r = other.post(
            "/v2/memories/search/", json={"query": "Acme", "filters": {"user_id": "alice"}, "enable_graph": True}
        )
        assert r.json()["relations"] == []
        assert timeline(other, "Acme").status_code == 404
        assert other.delete(f"/v1/graph/entities/{acme['id']}/").status_code == 404
        # an add of the other project never resolves to, or ends, this project's relations
        say(
            llm,
            lambda p: [fact("Works at Acme", relations=[rel("alice", "works_at", "Acme", target_type="organization")])],
        )
        add_graph(other, "I work at Acme.")
        assert (
            "Acme"
            not in prompt_of(llm.chat_requests()[-1]["body"]).split("Existing relations:")[1].split("New messages:")[0]
        )
    assert len(timeline(client, "Acme").json()["relations"]) == 1


def test_the_graph_is_scoped_to_the_requests_entity(client: httpx.Client, llm: FakeOpenAI) -> None:
    say(llm, lambda p: [fact("Lives in Oslo", relations=[rel("alice", "lives_in", "Oslo")])])
    add_graph(client, "I live in Oslo.")
    assert relations(client, "carol") == []
    assert timeline(client, "Oslo", user_id="carol").status_code == 404
    assert client.get("/v1/graph/entities/Oslo/relations/").status_code == 400


@pytest.mark.parametrize("bad", ["not-a-date"])
def test_a_bad_at_is_a_400(client: httpx.Client, llm: FakeOpenAI, bad: str) -> None:
    say(llm, lambda p: [fact("Lives in Oslo", relations=[rel("alice", "lives_in", "Oslo")])])
    add_graph(client, "I live in Oslo.")
    assert timeline(client, "alice", at=bad).status_code == 400
    assert uuid.UUID(timeline(client, "alice").json()["relations"][0]["id"])


# ----------------------------------------------------------------------------------------------
# the Neo4j mirror: an outage delays the copy, never fails the add
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mirror_db(pg: EmbeddedPostgres) -> str:
    """A database of its own: the session's other servers (no mirror configured) sweep the shared one."""
    return fresh_database(pg, "graph_mirror")


@pytest.fixture(scope="module")
def mirrored_server(mirror_db: str, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A memserver whose Neo4j mirror is configured but unreachable (nothing listens on the port)."""
    with served(
        mirror_db,
        tmp_path_factory.mktemp("graph-neo4j-down") / "memserver.log",
        **llm_env(
            fake,
            MEMSERVER_GRAPH__NEO4J_URL=f"bolt://127.0.0.1:{free_port()}",
            MEMSERVER_GRAPH__NEO4J_USER="neo4j",
            MEMSERVER_GRAPH__NEO4J_PASSWORD="not-a-real-password",
            MEMSERVER_GRAPH__NEO4J_TIMEOUT_S="1",
        ),
    ) as server:
        yield server


def test_a_neo4j_outage_fails_only_the_graph_sync_job(
    mirrored_server: LiveServer, mirror_db: str, llm: FakeOpenAI
) -> None:
    tenant = make_tenant(mirror_db)
    with httpx.Client(base_url=mirrored_server.url, headers={"Authorization": f"Token {tenant[1]}"}, timeout=30) as c:
        say(llm, lambda p: [fact("Lives in Oslo", relations=[rel("alice", "lives_in", "Oslo")])])
        out = add_graph(c, "I live in Oslo.")
        assert out["relations"]["added_entities"] == [
            [{"source": "alice", "relationship": "lives_in", "target": "Oslo"}]
        ]
        assert triples(relations(c)) == {("alice", "lives_in", "Oslo")}  # Postgres holds the graph
        deadline = time.monotonic() + 30
        while True:  # the mirror syncs in the background, after the add answered
            events = c.get("/v1/events/").json()
            items = events["results"] if isinstance(events, dict) else events
            [sync] = [e for e in items if e["event_type"] == "GRAPH_SYNC"]
            if sync["status"] == "SUCCEEDED" or sync["error"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # the attempt failed and is retried with backoff (FAILED once the attempts run out); nothing is lost
        assert sync["status"] in ("PENDING", "FAILED")
        assert sync["error"] == "Neo4j is unreachable"
        assert sync["payload"] == {"scopes": [{"user_id": "alice", "agent_id": None, "app_id": None, "run_id": None}]}


def test_a_filter_without_an_entity_equality_reads_no_relations(client: httpx.Client, llm: FakeOpenAI) -> None:
    for user in ("alice", "bob"):
        say(llm, lambda p, user=user: [fact("Lives in Oslo", relations=[rel(user, "lives_in", "Oslo")])])
        add_graph(client, "I live in Oslo.", user_id=user)
    either = {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}
    r = client.post("/v2/memories/", json={"filters": either, "enable_graph": True})
    assert len(r.json()["results"]) == 2
    assert r.json()["relations"] == []
    both = {"AND": [{"user_id": "alice"}, {"created_at": {"gte": "2000-01-01"}}]}
    r = client.post("/v2/memories/", json={"filters": both, "enable_graph": True})
    assert triples(r.json()["relations"]) == {("alice", "lives_in", "Oslo")}


def test_rewriting_a_memory_by_hand_retires_the_relations_it_gave(client: httpx.Client, llm: FakeOpenAI) -> None:
    say(
        llm, lambda p: [fact("Works at Acme", relations=[rel("alice", "works_at", "Acme", target_type="organization")])]
    )
    mid = add_graph(client, "I work at Acme.")["results"][0]["id"]
    assert client.put(f"/v1/memories/{mid}/", json={"metadata": {"k": 1}}).status_code == 200
    assert triples(relations(client)) == {("alice", "works_at", "Acme")}  # text unchanged: still stated
    assert client.put(f"/v1/memories/{mid}/", json={"text": "Works at Globex"}).status_code == 200
    assert relations(client) == []
    [old] = timeline(client, "Acme").json()["relations"]
    assert old["expired_at"] is not None
    assert old["invalid_at"] is None  # memserver stopped recording it; when it stopped holding is unknown


def test_a_queued_v3_add_builds_the_graph_in_one_call_and_its_event_says_so(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    say(llm, lambda p: [fact("Lives in Oslo", relations=[rel("alice", "lives_in", "Oslo")])])
    r = client.post(
        "/v3/memories/add/",
        json={"messages": [{"role": "user", "content": "I live in Oslo."}], "user_id": "alice", "enable_graph": True},
    )
    assert set(r.json()) == {"message", "status", "event_id"}  # the v3 response is unchanged
    deadline = time.monotonic() + 20
    while (event := client.get(f"/v1/event/{r.json()['event_id']}/").json())["status"] not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert event["status"] == "SUCCEEDED"
    assert event["graph_status"] == "SUCCEEDED"
    assert event["metadata"]["graph"] == {"relations_added": 1, "relations_retired": 0}
    assert event["metadata"]["llm_calls"] == 1
    assert triples(relations(client)) == {("alice", "lives_in", "Oslo")}
    # an add without enable_graph has no graph status
    say(llm, lambda p: [fact("Likes tea")])
    plain = add_graph(client, "I like tea.", enable_graph=False, async_mode=True)["results"][0]["event_id"]
    deadline = time.monotonic() + 20
    while (event := client.get(f"/v1/event/{plain}/").json())["status"] not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert event["graph_status"] is None


def test_a_relation_that_holds_again_after_it_ended_is_a_new_period(client: httpx.Client, llm: FakeOpenAI) -> None:
    lisbon = {"valid_from": "2015-01-01", "valid_to": "2020-01-01"}
    say(llm, lambda p: [fact("Lived in Lisbon 2015-2020", relations=[rel("alice", "lives_in", "Lisbon", **lisbon)])])
    add_graph(client, "I lived in Lisbon from 2015 to 2020.")
    say(
        llm,
        lambda p: [
            fact("Back in Lisbon since 2024", relations=[rel("alice", "lives_in", "Lisbon", valid_from="2024-01-01")])
        ],
    )
    out = add_graph(client, "I moved back to Lisbon in 2024.")
    assert out["relations"]["added_entities"] == [[{"source": "alice", "relationship": "lives_in", "target": "Lisbon"}]]
    assert len(timeline(client, "Lisbon").json()["relations"]) == 2
    assert len(timeline(client, "alice", at="2018-06-01").json()["relations"]) == 1
    assert timeline(client, "alice", at="2022-06-01").json()["relations"] == []
    assert len(timeline(client, "alice", at="2025-06-01").json()["relations"]) == 1
    assert triples(relations(client)) == {("alice", "lives_in", "Lisbon")}


# ----------------------------------------------------------------------------------------------
# the scope's entities (memserver extension: the console's entity picker)
# ----------------------------------------------------------------------------------------------
def test_a_scopes_entities_are_listed_busiest_first_with_a_name_prefix(client: httpx.Client, llm: FakeOpenAI) -> None:
    say(
        llm,
        lambda p: [
            fact("Lives in Lisbon", relations=[rel("alice", "lives_in", "Lisbon")]),
            fact("Works at Acme", relations=[rel("alice", "works_at", "Acme Corp", target_type="organization")]),
        ],
    )
    add_graph(client, "I live in Lisbon and work at Acme Corp.")

    def moved(prompt: str) -> list[dict[str, Any]]:
        ref = shown_relations(prompt)["alice -[lives_in]-> Lisbon"]
        return [fact("Moved to Porto", relations=[rel("alice", "lives_in", "Porto", replaces=[ref])])]

    say(llm, moved)
    add_graph(client, "I moved to Porto.")
    say(llm, lambda p: [fact("Bob lives in Lisbon", relations=[rel("bob", "lives_in", "Lisbon")])])
    add_graph(client, "Bob lives in Lisbon.", user_id="bob")

    r = client.get("/v1/graph/entities/", params={"user_id": "alice"})
    assert r.status_code == 200, r.text
    got = r.json()["results"]
    assert got[0]["name"] == "alice"
    by_name = {e["name"]: e for e in got}
    assert set(by_name) == {"alice", "Lisbon", "Acme Corp", "Porto"}  # bob's graph is another scope
    assert (by_name["alice"]["relations"], by_name["alice"]["current"]) == (3, 2)
    assert (by_name["Lisbon"]["relations"], by_name["Lisbon"]["current"]) == (1, 0)
    assert (by_name["Acme Corp"]["type"], by_name["Acme Corp"]["aliases"]) == ("organization", [])
    assert set(by_name["alice"]) == {"id", "name", "type", "aliases", "relations", "current"}
    # a prefix of the name (case and accents aside), and a limit
    found = client.get("/v1/graph/entities", params={"user_id": "alice", "q": "ac"}).json()["results"]
    assert [e["name"] for e in found] == ["Acme Corp"]
    assert client.get("/v1/graph/entities", params={"user_id": "alice", "q": "%"}).json()["results"] == []
    assert len(client.get("/v1/graph/entities", params={"user_id": "alice", "limit": 2}).json()["results"]) == 2
    # bad requests: no entity id, a limit out of range
    assert client.get("/v1/graph/entities/").status_code == 400
    assert client.get("/v1/graph/entities/", params={"user_id": "alice", "limit": 101}).status_code == 400
    assert client.get("/v1/graph/entities/", params={"user_id": "alice", "limit": 0}).status_code == 400
