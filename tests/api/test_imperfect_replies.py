"""Every defect class of the reply corpus (`tests/providers/reply_corpus/`) through a real memserver: a sync v1
add whose model answers with that imperfect reply stores what the model meant, in ONE LLM call, and says on
its event what it dropped. The exceptions: a reply cut by its token limit gets one continuation (`cut`) or
one more try (`retry`); a reply with nothing usable gets one repair round, then the add fails with a 502 and
writes nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.api.scripted_llm import client, fake, llm, llm_server
from tests.fakes.openai_server import FakeOpenAI
from tests.providers.reply_corpus import CLASSES, load, scripted

__all__ = ["client", "fake", "llm", "llm_server"]  # the scripted model's fixtures

MESSAGES = [
    {"role": "user", "content": "I have a dog named Rex and I work at Acme as a senior engineer."},
    {"role": "assistant", "content": "Nice! How old is Rex?"},
    {"role": "user", "content": "Rex is 3. I also love tennis, and my sister Ana lives in Porto."},
]
KNOWN = "Lives in Lisbon"  # stored verbatim first: the model is shown it as ref 1


def memories(client: httpx.Client) -> list[str]:
    r = client.post("/v3/memories/", json={"filters": {"user_id": "alice"}})
    assert r.status_code == 200, r.text
    return sorted(m["memory"] for m in r.json()["results"])


def last_add_event(client: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = client.get("/v1/events/").json()["results"]
        inferred = [e for e in events if isinstance(e.get("metadata"), dict) and "llm_calls" in e["metadata"]]
        if inferred:
            return dict(max(inferred, key=lambda e: str(e["created_at"])))
        time.sleep(0.05)
    raise AssertionError("the inferred add left no event")


@pytest.mark.parametrize("name", CLASSES)
def test_an_imperfect_reply_still_stores_what_the_model_meant(client: httpx.Client, llm: FakeOpenAI, name: str) -> None:
    text, expected = load(name)
    body: dict[str, Any] = {"messages": [{"role": "user", "content": KNOWN}], "user_id": "alice", "infer": False}
    assert client.post("/v1/memories/", json=body).status_code == 200
    llm.chat_replies.extend(scripted(text, expected))
    add = {"messages": MESSAGES, "user_id": "alice", "async_mode": False}
    if expected["request"] == "graph":
        add["enable_graph"] = True
    r = client.post("/v1/memories/", json=add)
    assert len(llm.chat_requests()) == expected["calls"]
    if expected["verdict"] == "nothing_usable":
        assert r.status_code == 502, r.text
        assert r.json()["detail"]
        assert memories(client) == [KNOWN]
        return
    assert r.status_code == 200, r.text
    stored = {f["text"] for f in expected["facts"] if f["action"] in ("ADD", "UPDATE")}
    assert memories(client) == sorted({KNOWN, *stored})
    event = last_add_event(client)
    assert event["metadata"]["llm_calls"] == expected["calls"]
    for note in expected["notes"]:
        assert note in event["metadata"]["notes"], event["metadata"]["notes"]


def test_the_issues_repro_an_invented_replaces_ref_with_enable_graph(client: httpx.Client, llm: FakeOpenAI) -> None:
    """One invented `replaces` ref in one relation used to send the reply to repair, and a repeated one ended
    the add 502 with nothing written. Now: 200, the memories and relations written, the bad ref dropped with a
    note, one call."""
    reply = (
        '{"facts": [{"text": "Has a dog named Rex", "speaker": "user", "sources": [0], "action": "ADD", '
        '"relations": [{"source": "alice", "relationship": "owns", "target": "Rex", "replaces": [3]}]}]}'
    )
    llm.chat_replies.extend([reply, reply])
    r = client.post(
        "/v1/memories/",
        json={"messages": MESSAGES[:1], "user_id": "alice", "async_mode": False, "enable_graph": True},
    )
    assert r.status_code == 200, r.text
    assert [e["memory"] for e in r.json()] == ["Has a dog named Rex"]
    assert len(llm.chat_requests()) == 1
    event = last_add_event(client)
    assert (
        "replaces [3]: not refs of the existing relations shown; removed from a relation" in event["metadata"]["notes"]
    )
    listed = client.post("/v2/memories/", json={"filters": {"user_id": "alice"}, "enable_graph": True})
    assert [(x["source"], x["relationship"], x["target"]) for x in listed.json()["relations"]] == [
        ("alice", "owns", "Rex")
    ]
