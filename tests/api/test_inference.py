"""infer=true end to end: a real memserver process, the real `openai` SDK, and a scripted OpenAI-compatible
server on 127.0.0.1 that plays the model (each test decides what it answers)."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.api.scripted_llm import client, fact, facts, fake, llm, llm_server, prompt_of
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["client", "fake", "llm", "llm_server"]  # the scripted model's fixtures

ADD = "/v3/memories/add/"
Script = Callable[[str], list[dict[str, Any]]]
LLM_TIMEOUT_S = "2"  # the slow-LLM test hangs the fake for longer than this


def refs_in(prompt: str) -> dict[str, int]:
    """Memory text -> the ref the prompt shows it under."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^ref (\d+): (.*?)(?: \(noted [\d-]+\))?$", prompt, re.M)}


def script(llm: FakeOpenAI, decide: Script) -> None:
    """The model answers with `decide(prompt)`: a list of facts."""
    llm.chat_script = lambda body: facts(*decide(prompt_of(body)))


def wait_event(client: httpx.Client, event_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = client.get(f"/v1/event/{event_id}/").json()
        if event["status"] in ("SUCCEEDED", "FAILED"):
            return dict(event)
        time.sleep(0.05)
    raise AssertionError(f"event {event_id} did not finish")


def add_v3(client: httpx.Client, *texts: str, user_id: str = "alice", **body: Any) -> dict[str, Any]:
    r = client.post(ADD, json={"messages": [{"role": "user", "content": t} for t in texts], "user_id": user_id, **body})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "PENDING"
    return wait_event(client, r.json()["event_id"])


def add_sync(client: httpx.Client, *texts: str, user_id: str = "alice", **body: Any) -> httpx.Response:
    """v1 with async_mode=false: processed in the request; answers the memory events."""
    payload = {"messages": [{"role": "user", "content": t} for t in texts], "user_id": user_id, "async_mode": False}
    return client.post("/v1/memories/", json={**payload, **body})


def memories(client: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    r = client.post("/v3/memories/", json={"filters": filters or {"user_id": "alice"}})
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


# ----------------------------------------------------------------------------------------------
# the basic events
# ----------------------------------------------------------------------------------------------
def test_a_new_fact_is_added_with_categories_and_provenance(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("Lives in Berlin", categories=["personal_details"])])
    event = add_v3(client, "Hi! I live in Berlin.", metadata={"src": "chat"})
    assert event["status"] == "SUCCEEDED", event
    assert [(r["event"], r["data"]["memory"]) for r in event["results"]] == [("ADD", "Lives in Berlin")]
    [m] = memories(client)
    assert m["memory"] == "Lives in Berlin"
    assert m["categories"] == ["personal_details"]
    assert m["metadata"] == {"src": "chat"}
    assert m["provenance"] == {"sources": [{"event_id": event["id"], "message_indices": [0]}]}
    assert m["id"] == event["results"][0]["id"]
    assert event["metadata"]["llm_calls"] == 1
    assert event["event_type"] == "ADD"
    assert event["payload"]["messages"] == [{"role": "user", "content": "Hi! I live in Berlin."}]
    assert event["payload"]["metadata"] == {"src": "chat"}
    assert event["latency"] > 0


def test_an_exact_duplicate_is_a_noop(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("Has a dog named Rex")])
    first = add_v3(client, "My dog is called Rex.")
    second = add_v3(client, "Did I tell you my dog is called Rex?")
    assert [r["event"] for r in first["results"]] == ["ADD"]
    assert [r["event"] for r in second["results"]] == ["NOOP"]
    assert second["results"][0]["id"] == first["results"][0]["id"]
    assert len(memories(client)) == 1


def test_moving_updates_the_city_and_keeps_the_old_text_in_history(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("Lives in Berlin")])
    first = add_v3(client, "I live in Berlin.")
    script(llm, lambda p: [fact("Lives in Munich", action="UPDATE", ref=refs_in(p)["Lives in Berlin"])])
    r = add_sync(client, "I moved to Munich.")
    assert r.status_code == 200, r.text
    [item] = r.json()
    assert item["event"] == "UPDATE"
    assert item["id"] == first["results"][0]["id"]
    assert item["memory"] == item["data"]["memory"] == "Lives in Munich"
    assert item["previous_memory"] == "Lives in Berlin"
    [m] = memories(client)
    assert m["memory"] == "Lives in Munich"
    history = client.get(f"/v1/memories/{m['id']}/history/").json()
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in history] == [
        ("ADD", None, "Lives in Berlin"),
        ("UPDATE", "Lives in Berlin", "Lives in Munich"),
    ]
    assert history[1]["input"] == [{"role": "user", "content": "I moved to Munich."}]
    assert [s["message_indices"] for s in m["provenance"]["sources"]] == [[0], [0]]


def test_a_contradiction_supersedes_the_old_memory(client: httpx.Client, llm: FakeOpenAI) -> None:
    """The model deletes the contradicted memory and adds the new fact from the same message: the old one is
    kept as superseded (replaced_by the new one), hidden by latest_only, deleted with delete_linked."""
    script(llm, lambda p: [fact("Loves steak")])
    old = add_v3(client, "Steak is my favourite food.")["results"][0]["id"]
    script(
        llm,
        lambda p: [
            fact("Loves steak", action="DELETE", ref=refs_in(p)["Loves steak"]),
            fact("Is vegetarian"),
        ],
    )
    event = add_v3(client, "I have been vegetarian since January.")
    assert sorted((r["event"], r["data"]["memory"]) for r in event["results"]) == [
        ("ADD", "Is vegetarian"),
        ("DELETE", "Loves steak"),
    ]
    new = next(r["id"] for r in event["results"] if r["event"] == "ADD")
    by_text = {m["memory"]: m for m in memories(client)}
    assert by_text["Loves steak"]["replaced_by"] == new
    assert by_text["Loves steak"]["lifecycle_state"] == "superseded"
    latest = client.post("/v3/memories/", json={"filters": {"user_id": "alice"}, "latest_only": True}).json()
    assert [m["memory"] for m in latest["results"]] == ["Is vegetarian"]
    history = client.get(f"/v1/memories/{old}/history/").json()
    assert [(h["event"], h["old_memory"]) for h in history] == [("ADD", None), ("DELETE", "Loves steak")]
    r = client.delete(f"/v1/memories/{new}/", params={"delete_linked": "true"})
    assert r.json()["cascade_count"] == 1
    assert memories(client) == []


def test_forget_my_address_deletes_it(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("Lives at 12 Oak Street"), fact("Works as a nurse")])
    add_v3(client, "I live at 12 Oak Street and work as a nurse.")
    script(llm, lambda p: [fact("Lives at 12 Oak Street", action="DELETE", ref=refs_in(p)["Lives at 12 Oak Street"])])
    r = add_sync(client, "Please forget my address.")
    assert r.status_code == 200, r.text
    assert [(i["event"], i["memory"]) for i in r.json()] == [("DELETE", "Lives at 12 Oak Street")]
    assert [m["memory"] for m in memories(client)] == ["Works as a nurse"]


def test_an_immutable_memory_is_never_changed_by_inference(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("Blood type is A+")])
    kept = add_v3(client, "My blood type is A+.", immutable=True)["results"][0]["id"]
    script(
        llm,
        lambda p: [
            fact("Blood type is B-", action="UPDATE", ref=refs_in(p)["Blood type is A+"]),
            fact("Blood type is A+", action="DELETE", ref=refs_in(p)["Blood type is A+"]),
        ],
    )
    event = add_v3(client, "Actually my blood type is B-.")
    # the event reports what happened: one new memory, the immutable one left as it was (NOOP)
    assert event["status"] == "SUCCEEDED", event
    assert sorted((r["event"], r["data"]["memory"]) for r in event["results"]) == [
        ("ADD", "Blood type is B-"),
        ("NOOP", "Blood type is A+"),
    ]
    assert [r["event"] for r in event["results"] if r["id"] == kept] == ["NOOP"]
    by_text = {m["memory"]: m for m in memories(client)}
    assert by_text["Blood type is A+"]["id"] == kept
    assert by_text["Blood type is A+"]["immutable"] is True
    assert by_text["Blood type is A+"]["lifecycle_state"] == "active"  # not superseded by the new one
    assert by_text["Blood type is B-"]["lifecycle_state"] == "active"
    assert [h["event"] for h in client.get(f"/v1/memories/{kept}/history/").json()] == ["ADD"]


# ----------------------------------------------------------------------------------------------
# what the model is told
# ----------------------------------------------------------------------------------------------
def test_instructions_categories_and_the_observation_date_reach_the_model(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    script(llm, lambda p: [fact("Started a new job", categories=["work_life"])])
    event = add_v3(
        client,
        "Yesterday I started my new job.",
        includes="career events",
        excludes="anything about the weather",
        custom_instructions="Write facts in the third person.",
        custom_categories=[{"work_life": "jobs and careers"}],
        timestamp=1_700_000_000,  # 2023-11-14
    )
    prompt = prompt_of(llm.chat_requests()[-1]["body"])
    for expected in (
        "career events",
        "anything about the weather",
        "Write facts in the third person.",
        "work_life",
        "2023-11-14",
    ):
        assert expected in prompt
    request_part = str(llm.chat_requests()[-1]["body"]["messages"][-1]["content"])
    assert "work_life" in request_part
    assert "personal_details" not in request_part  # custom categories replace the default catalogue
    [m] = memories(client)
    assert m["categories"] == ["work_life"]
    assert m["created_at"].startswith("2023-11-14")
    assert event["status"] == "SUCCEEDED"


def test_existing_memories_are_shown_under_small_refs_never_uuids(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("Plays the violin")])
    mid = add_v3(client, "I play the violin.")["results"][0]["id"]
    script(llm, lambda p: [])
    add_v3(client, "I practise the violin every day.")
    prompt = prompt_of(llm.chat_requests()[-1]["body"])
    assert refs_in(prompt) == {"Plays the violin": 1}
    assert mid not in prompt
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", prompt)


def test_user_and_assistant_facts_are_attributed_to_their_speaker(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(
        llm,
        lambda p: [
            fact("Is allergic to nuts", speaker="user", sources=[0]),
            fact("Will remind the user about appointments", speaker="assistant", sources=[1]),
        ],
    )
    r = client.post(
        ADD,
        json={
            "messages": [
                {"role": "user", "content": "I'm allergic to nuts."},
                {"role": "assistant", "content": "Noted, I will remind you about appointments."},
            ],
            "user_id": "alice",
            "agent_id": "helper",
            "run_id": "r1",
        },
    )
    event = wait_event(client, r.json()["event_id"])
    assert event["status"] == "SUCCEEDED", event
    user = memories(client, user_id="alice")
    agent = memories(client, agent_id="helper")
    assert [(m["memory"], m["agent_id"], m["run_id"]) for m in user] == [("Is allergic to nuts", None, "r1")]
    assert [(m["memory"], m["user_id"], m["run_id"]) for m in agent] == [
        ("Will remind the user about appointments", None, "r1")
    ]


# ----------------------------------------------------------------------------------------------
# bad replies and failing models: nothing is written
# ----------------------------------------------------------------------------------------------
def test_a_malformed_reply_is_repaired_once(client: httpx.Client, llm: FakeOpenAI) -> None:
    llm.chat_replies.extend(["this is not json", facts(fact("Speaks Italian"))])
    event = add_v3(client, "I speak Italian.")
    assert event["status"] == "SUCCEEDED", event
    assert [m["memory"] for m in memories(client)] == ["Speaks Italian"]
    assert event["metadata"]["llm_calls"] == 2


def test_malformed_twice_fails_the_event_and_writes_nothing(client: httpx.Client, llm: FakeOpenAI) -> None:
    llm.chat_replies.extend(["nope", "{still not"])
    event = add_v3(client, "I speak Italian.")
    assert event["status"] == "FAILED"
    assert "did not match" in event["error"]
    assert memories(client) == []


def test_an_invented_ref_never_touches_a_memory(client: httpx.Client, llm: FakeOpenAI) -> None:
    """An UPDATE of a memory that was not shown still states a fact: stored as a new memory, with a note; a
    DELETE of one states nothing: dropped. The stored memory is untouched, in one LLM call."""
    script(llm, lambda p: [fact("Owns a bike")])
    add_v3(client, "I own a bike.")
    llm.chat_script = None
    llm.requests.clear()
    invented = facts(fact("Owns a car", action="UPDATE", ref=42), fact("Owns a bike", action="DELETE", ref=43))
    llm.chat_replies.extend([invented] * 2)
    r = add_sync(client, "I sold the bike and bought a car.")
    assert r.status_code == 200, r.text
    assert [(i["event"], i["memory"]) for i in r.json()] == [("ADD", "Owns a car")]
    assert sorted(m["memory"] for m in memories(client)) == ["Owns a bike", "Owns a car"]
    assert len(llm.chat_requests()) == 1
    event = client.get("/v1/events/").json()["results"][0]
    assert "an UPDATE of ref 42, which was not shown, was kept as an ADD" in event["metadata"]["notes"]
    assert "reply item facts[1] dropped: ref 43 is not one of the existing memories shown" in event["metadata"]["notes"]


def test_llm_down_is_a_503_and_slow_is_a_504_without_provider_text(client: httpx.Client, llm: FakeOpenAI) -> None:
    llm.fail_next = 10
    r = add_sync(client, "I like tea.")
    assert r.status_code == 503, r.text
    assert r.json()["detail"].startswith("the LLM endpoint failed (HTTP 500, after 1 retries)"), r.text
    assert "scripted failure" not in r.text  # the provider's own error text is not echoed
    assert "sk-test-secret" not in r.text
    llm.fail_next = 0
    llm.hang_next, llm.hang_s = 4, 3.0
    r = add_sync(client, "I like coffee.")
    assert r.status_code == 504, r.text
    assert r.json()["detail"].startswith(f"the LLM endpoint timed out after {LLM_TIMEOUT_S} s"), r.text
    assert memories(client) == []
    events = client.get("/v1/events/").json()["results"]
    assert {e["status"] for e in events} == {"FAILED"}


def test_no_llm_configured_refuses_infer_true_at_once(api: httpx.Client) -> None:
    """The default test server has no LLM: every generation's infer=true add is refused, nothing is queued."""
    body = {"messages": [{"role": "user", "content": "I like tea."}], "user_id": "alice"}
    for path, extra in ((ADD, {}), ("/v1/memories/", {}), ("/v1/memories/", {"async_mode": False})):
        r = api.post(path, json={**body, **extra})
        assert r.status_code == 501, r.text
        detail = r.json()["detail"]
        assert "no LLM is configured" in detail
        assert "MEMSERVER_LLM__BASE_URL" in detail
        assert "infer=false" in detail
    assert api.get("/v1/events/").json()["count"] == 0
    assert api.post(ADD, json={**body, "infer": False}).status_code == 200


def test_a_server_that_rejects_json_schema_still_works(client: httpx.Client, llm: FakeOpenAI) -> None:
    """llama.cpp answers 500 to json_schema; memserver falls back to json_object mode."""
    llm.reject_json_schema = 500
    script(llm, lambda p: [fact("Runs marathons")])
    event = add_v3(client, "I run marathons.")
    assert event["status"] == "SUCCEEDED", event
    assert llm.chat_requests()[-1]["body"]["response_format"] == {"type": "json_object"}


# ----------------------------------------------------------------------------------------------
# concurrency, and the second call
# ----------------------------------------------------------------------------------------------
def test_twenty_concurrent_identical_adds_give_one_memory(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("Collects stamps")])
    user = f"u-{uuid.uuid4().hex[:6]}"

    def one(_: int) -> int:
        return add_sync(client, "I collect stamps.", user_id=user).status_code

    with ThreadPoolExecutor(20) as pool:
        assert set(pool.map(one, range(20))) == {200}
    assert [m["memory"] for m in memories(client, user_id=user)] == ["Collects stamps"]


def test_a_second_call_only_when_the_nearest_memory_was_not_shown(client: httpx.Client, llm: FakeOpenAI) -> None:
    hobbies = [f"Enjoys weekend hobby number {i} with friends" for i in range(12)]
    script(llm, lambda p: [fact(h) for h in hobbies] + [fact("Lives in the city of Berlin")])
    add_v3(client, "Let me tell you about my weekend hobbies with friends, and that I live in Berlin.")

    seen: list[str] = []

    def decide(p: str) -> list[dict[str, Any]]:
        seen.append(p)
        refs = refs_in(p)
        if "Lives in the city of Berlin" in refs:  # the follow-up shows the memory the first prompt missed
            return [fact("Lives in the city of Berlin", action="NOOP", ref=refs["Lives in the city of Berlin"])]
        return [fact("The user lives in Berlin")]

    script(llm, decide)
    event = add_v3(client, "Weekend hobbies with friends are my favourite thing.")
    assert event["status"] == "SUCCEEDED", event
    assert len(seen) == 2
    assert "Lives in the city of Berlin" not in refs_in(seen[0])
    assert event["metadata"]["second_call"] is True
    assert [r["event"] for r in event["results"]] == ["NOOP"]
    assert "The user lives in Berlin" not in [m["memory"] for m in memories(client)]


def test_each_messages_own_nearest_memories_are_shown_in_the_one_call(client: httpx.Client, llm: FakeOpenAI) -> None:
    """A short message in a long exchange: the exchange's nearest memories are all about the long message, but
    the short message's own nearest memory is shown too, so the model reconciles it in the one call."""
    hobbies = [f"Enjoys weekend hobby number {i} with friends" for i in range(12)]
    script(llm, lambda p: [fact(h) for h in hobbies] + [fact("Drives a red bicycle to work")])
    add_v3(client, "My weekend hobbies with friends, and how I get to work.")

    seen: list[str] = []

    def decide(p: str) -> list[dict[str, Any]]:
        seen.append(p)
        refs = refs_in(p)
        if "Drives a red bicycle to work" in refs:
            return [fact("Drives a red bicycle to work", action="NOOP", ref=refs["Drives a red bicycle to work"])]
        return [fact("Drives a red bicycle to work", sources=[1])]

    script(llm, decide)
    long_message = " ".join(f"Weekend hobby number {i} with friends is great fun." for i in range(12))
    event = add_v3(client, long_message, "I cycle.")
    assert event["status"] == "SUCCEEDED", event
    assert len(seen) == 1, "one LLM call"
    assert event["metadata"]["llm_calls"] == 1
    assert event["metadata"]["second_call"] is False
    assert [r["event"] for r in event["results"]] == ["NOOP"]
    assert event["metadata"]["candidates"] > 10  # the ten nearest to the exchange, plus the message's own


# ----------------------------------------------------------------------------------------------
# multimodal parts
# ----------------------------------------------------------------------------------------------
def test_documents_are_read_and_images_skipped_without_vision(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("Passport expires in March 2027")])
    doc = base64.b64encode(b"Passport number X123, expires in March 2027.").decode()
    content = [
        {"type": "text", "text": "Here is my passport note and a photo."},
        {"type": "txt_url", "txt_url": {"url": doc}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/photo.jpg"}},
    ]
    r = client.post(ADD, json={"messages": [{"role": "user", "content": content}], "user_id": "alice"})
    event = wait_event(client, r.json()["event_id"])
    assert event["status"] == "SUCCEEDED", event
    prompt = prompt_of(llm.chat_requests()[-1]["body"])
    assert "expires in March 2027" in prompt  # the document's text reached the model
    assert "photo.jpg" not in prompt  # the model is not vision-capable: no image was sent
    assert any("image(s) skipped" in n for n in event["metadata"]["notes"])


def test_a_document_on_a_loopback_url_is_refused(client: httpx.Client, llm: FakeOpenAI) -> None:
    script(llm, lambda p: [fact("never extracted")])
    content = [{"type": "mdx_url", "mdx_url": {"url": "http://127.0.0.1:9/notes.mdx"}}]
    r = client.post(
        "/v1/memories/",
        json={"messages": [{"role": "user", "content": content}], "user_id": "alice", "async_mode": False},
    )
    assert r.status_code == 400, r.text
    assert "private, loopback or link-local" in r.json()["detail"]
    assert llm.chat_requests() == []
    assert memories(client) == []


def test_project_settings_apply_to_inference_and_the_request_wins(client: httpx.Client, llm: FakeOpenAI) -> None:
    ping = client.get("/v1/ping/").json()
    path = f"/api/v1/orgs/organizations/{ping['org_id']}/projects/{ping['project_id']}/"
    settings = {"custom_instructions": "PROJECT-RULE: only food.", "custom_categories": [{"cuisine": "dishes"}]}
    assert client.patch(path, json=settings).status_code == 200
    script(llm, lambda p: [fact("Loves ramen", categories=["cuisine"])])
    add_v3(client, "I love ramen.")
    request_part = str(llm.chat_requests()[-1]["body"]["messages"][-1]["content"])
    assert "PROJECT-RULE: only food." in request_part
    assert "cuisine" in request_part
    assert [m["categories"] for m in memories(client)] == [["cuisine"]]
    add_v3(client, "I love udon.", custom_instructions="REQUEST-RULE wins.")
    request_part = str(llm.chat_requests()[-1]["body"]["messages"][-1]["content"])
    assert "REQUEST-RULE wins." in request_part
    assert "PROJECT-RULE" not in request_part


# ----------------------------------------------------------------------------------------------
# what the LLM decided, and what it cost (the event's metadata)
# ----------------------------------------------------------------------------------------------
def test_each_decision_is_on_the_event_with_its_source_messages(client: httpx.Client, llm: FakeOpenAI) -> None:
    body = {"messages": [{"role": "user", "content": t} for t in ("Lives in Berlin", "Owns a bike", "Likes tea")]}
    assert client.post(ADD, json={**body, "user_id": "alice", "infer": False}).status_code == 200
    stored = {m["memory"]: m["id"] for m in memories(client)}

    def decide(p: str) -> list[dict[str, Any]]:
        refs = refs_in(p)
        return [
            fact("Speaks Italian", sources=[1]),
            fact("Lives in Munich", action="UPDATE", ref=refs["Lives in Berlin"], sources=[2]),
            fact("Owns a bike", action="DELETE", ref=refs["Owns a bike"], sources=[0]),
            fact("Likes tea", action="NOOP", ref=refs["Likes tea"], sources=[1, 2]),
        ]

    script(llm, decide)
    before = llm.stats_snapshot()
    event = add_v3(client, "I sold my bike.", "Ciao! I speak Italian, and still like tea.", "I moved to Munich.")
    after = llm.stats_snapshot()
    assert event["status"] == "SUCCEEDED", event
    added = next(r["id"] for r in event["results"] if r["event"] == "ADD")
    assert event["metadata"]["decisions"] == [
        {
            "op": "ADD",
            "text": "Speaks Italian",
            "previous_text": None,
            "memory_id": added,
            "speaker": "user",
            "categories": [],
            "message_indices": [1],
        },
        {
            "op": "UPDATE",
            "text": "Lives in Munich",
            "previous_text": "Lives in Berlin",
            "memory_id": stored["Lives in Berlin"],
            "speaker": "user",
            "categories": [],
            "message_indices": [2],
        },
        {
            "op": "DELETE",
            "text": "Owns a bike",
            "previous_text": "Owns a bike",
            "memory_id": stored["Owns a bike"],
            "speaker": "user",
            "categories": [],
            "message_indices": [0],
        },
        {
            "op": "NOOP",
            "text": "Likes tea",
            "previous_text": "Likes tea",
            "memory_id": stored["Likes tea"],
            "speaker": "user",
            "categories": [],
            "message_indices": [1, 2],
        },
    ]
    # the indices are the event's own messages
    assert event["payload"]["messages"][2]["content"] == "I moved to Munich."
    # the results clients read keep their shape
    assert sorted(r["event"] for r in event["results"]) == ["ADD", "DELETE", "NOOP", "UPDATE"]
    assert event["metadata"]["llm_calls"] == 1
    assert event["metadata"]["prompt_tokens"] == after["prompt_tokens"] - before["prompt_tokens"]
    assert event["metadata"]["completion_tokens"] == after["completion_tokens"] - before["completion_tokens"]


def test_a_failed_add_records_what_its_llm_calls_cost(client: httpx.Client, llm: FakeOpenAI) -> None:
    """Queued (a job) and processed in the request alike: the reply and its repair were paid for."""
    for send in ("queued", "in the request"):
        llm.chat_replies.extend(["nope", "{still not"])
        before = llm.stats_snapshot()
        if send == "queued":
            event = add_v3(client, "I speak Italian.")
        else:
            assert add_sync(client, "I speak Italian.").status_code == 502
            event = client.get("/v1/events/").json()["results"][0]
        after = llm.stats_snapshot()
        assert event["status"] == "FAILED", (send, event)
        assert event["metadata"]["llm_calls"] == 2, send
        assert event["metadata"]["prompt_tokens"] == after["prompt_tokens"] - before["prompt_tokens"] > 0
        assert event["metadata"]["completion_tokens"] == after["completion_tokens"] - before["completion_tokens"]
    assert memories(client) == []


def test_a_retried_add_counts_what_every_attempt_spent(client: httpx.Client, llm: FakeOpenAI) -> None:
    """Attempt 1: the reply is unusable and its repair times out (retried later); attempt 2 succeeds. The event
    counts both answered calls, not only the last attempt's."""
    answered = iter(["nope", "hang", "hang"])

    def reply(body: dict[str, Any]) -> str:
        what = next(answered, "facts")
        if what == "hang":
            time.sleep(float(LLM_TIMEOUT_S) + 1)  # past the client's timeout: no usage reaches it
        return facts(fact("Speaks Italian")) if what == "facts" else what

    llm.chat_script = reply
    event = add_v3(client, "I speak Italian.")
    assert event["status"] == "SUCCEEDED", event
    assert len(llm.chat_requests()) == 4
    assert event["metadata"]["llm_calls"] == 2
