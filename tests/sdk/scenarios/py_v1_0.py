"""Scenario for the Python SDK 1.0.x generation (mem0ai 1.0.11).

Run with the SDK venv's interpreter:
    MEMSERVER_URL=http://127.0.0.1:8123 MEMSERVER_KEY=... MEM0_TELEMETRY=false python py_v1_0.py [wrong-key]

What mem0ai 1.0.11 sends (read from mem0/client/main.py). After the ping the client copies org_id and
project_id from the ping reply into EVERY call made through _prepare_params: as JSON body keys for
add/get_all/search, as query parameters for get/update/delete/delete_all/history/users/entity deletes.
  ctor          GET  /v1/ping/                  -> JSON parsed before the status check; non-2xx -> ValueError
  add           POST /v1/memories/   body {messages, user_id..., metadata, infer, async_mode (default true),
                                           output_format: "v1.1", org_id, project_id}
  get_all       POST /v2/memories/[?page=&page_size= only when both]  body {user_id... | filters, org_id, ...}
                -> a bare list is wrapped client-side into {"results": list}; a dict is passed through
  search        POST /v2/memories/search/ body {query, user_id... | filters, top_k, threshold, org_id, ...}
                -> same wrapping as get_all
  get/update/history/delete/delete_all/users/delete_users/batch_*: as 2.x (/v1, /v2/entities), no encoding.
"""

from __future__ import annotations

import importlib.metadata
import sys

from _common import (
    by_id,
    check,
    check_eq,
    check_keys,
    check_relations,
    check_scores,
    check_timestamp,
    check_uuid,
    check_wrong_keys,
    delete_all_filters,
    env,
    expect_raises,
    memory_texts,
    poll_event,
    run,
    step,
    suffix,
    v1_infer,
    wait_for,
)
from mem0 import AsyncMemoryClient, MemoryClient
from mem0.exceptions import AuthenticationError, MemoryNotFoundError, ValidationError

NAME = f"py-v1.0 mem0ai {importlib.metadata.version('mem0ai')}"

T_FOOD = "My favourite food is spicy Thai green curry."
T_HIKE = "I go hiking in the Swiss Alps every summer."
T_ASSIST = "I will remind you about your dentist appointment on Friday."
T_UA = "Alice wants the travel agent to always book aisle seats on flights."
T_AGENT = "The support agent must answer in formal British English."
T_RUN = "During this session the user is planning a trip to Lisbon in May."
T_BOB1 = "Bob plays the cello in a community orchestra."
T_BOB2 = "Bob is allergic to peanuts."
T_FOOD_NEW = "My favourite food is Neapolitan pizza with buffalo mozzarella."
T_UA_NEW = "Alice wants the travel agent to always book window seats on flights."


def added_sync(resp, expected_texts: list[str], what: str) -> list[str]:
    """Check an async_mode=False, output_format=v1.1 add response; return ids in the given text order."""
    check_keys(resp, ["results", "relations"], what)
    results = resp["results"]
    check(isinstance(results, list), f"{what}: results should be a list", resp)
    check_eq(sorted(r.get("memory") for r in results), sorted(expected_texts), f"{what}: results[].memory")
    for r in results:
        check_eq(r.get("event"), "ADD", f"{what}: results[].event")
        check_eq(r.get("data", {}).get("memory"), r.get("memory"), f"{what}: results[].data.memory")
        check_uuid(r.get("id"), f"{what}: results[].id")
    text_to_id = {r["memory"]: r["id"] for r in results}
    return [text_to_id[t] for t in expected_texts]


def listed(resp, what: str) -> list[dict]:
    check_keys(resp, ["results"], what)
    check(isinstance(resp["results"], list), f"{what}: results should be a list", resp)
    return resp["results"]


def scenario() -> None:
    url, key = env()
    sfx = suffix()
    alice, bob = f"alice-{sfx}", f"bob-{sfx}"
    agent, run_id = f"agent-{sfx}", f"run-{sfx}"

    step("construct MemoryClient (GET /v1/ping/)")
    client = MemoryClient(api_key=key, host=url)
    check(
        client.org_id and client.project_id,
        "org_id/project_id not taken from the ping reply",
        (client.org_id, client.project_id),
    )

    step("add: user scope, async_mode=False (memory events with ids)")
    resp = client.add(
        [{"role": "user", "content": T_FOOD}],
        user_id=alice,
        infer=False,
        async_mode=False,
        metadata={"topic": "food", "priority": 1},
    )
    (food_id,) = added_sync(resp, [T_FOOD], "add user")

    step("add: default async_mode=True (queued-style reply), found afterwards via get_all")
    resp = client.add(
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": T_HIKE},
            {"role": "assistant", "content": T_ASSIST},
        ],
        user_id=alice,
        infer=False,
        metadata={"topic": "misc"},
    )
    check_keys(resp, ["results"], "async add")
    check(isinstance(resp["results"], list) and resp["results"], "async add: results should be a list", resp)
    for item in resp["results"]:
        check_keys(item, ["message", "status", "event_id"], "async add item")
        check(item["status"] in ("PENDING", "SUCCEEDED"), "async add: status", item)
        check_uuid(item["event_id"], "async add: event_id")

    def find_conversation():
        found = {m["memory"]: m["id"] for m in listed(client.get_all(user_id=alice), "get_all")}
        return found if T_HIKE in found and T_ASSIST in found else None

    found = wait_for(find_conversation, "the async_mode=True add to be listed")
    hike_id, assist_id = found[T_HIKE], found[T_ASSIST]

    step("add: user+agent scope")
    resp = client.add(T_UA, user_id=alice, agent_id=agent, infer=False, async_mode=False, metadata={"topic": "flights"})
    (ua_id,) = added_sync(resp, [T_UA], "add user+agent")

    step("add: agent-only scope")
    resp = client.add({"role": "assistant", "content": T_AGENT}, agent_id=agent, infer=False, async_mode=False)
    (agent_mem_id,) = added_sync(resp, [T_AGENT], "add agent only")

    step("add: user+run scope with metadata")
    resp = client.add(T_RUN, user_id=alice, run_id=run_id, infer=False, async_mode=False, metadata={"topic": "travel"})
    (run_mem_id,) = added_sync(resp, [T_RUN], "add user+run")

    step("add: second user")
    resp = client.add(
        [{"role": "user", "content": T_BOB1}, {"role": "user", "content": T_BOB2}],
        user_id=bob,
        infer=False,
        async_mode=False,
    )
    bob1_id, _bob2_id = added_sync(resp, [T_BOB1, T_BOB2], "add bob")

    step("get by id")
    mem = client.get(food_id)
    check_keys(mem, ["id", "memory", "user_id", "metadata", "created_at", "updated_at"], "get(food)")
    check_eq((mem["id"], mem["memory"], mem["user_id"]), (food_id, T_FOOD, alice), "get(food) id/memory/user")
    check_eq(mem["metadata"], {"topic": "food", "priority": 1}, "get(food).metadata")
    check_timestamp(mem["created_at"], "get(food).created_at")
    mem = client.get(ua_id)
    check_eq((mem.get("user_id"), mem.get("agent_id")), (alice, agent), "get(user+agent) (user_id, agent_id)")
    mem = client.get(run_mem_id)
    check_eq((mem.get("run_id"), mem.get("session_id")), (run_id, run_id), "get(run) (run_id, session_id)")
    expect_raises(ValidationError, lambda: client.get("not-a-uuid"), "get('not-a-uuid') (400)")

    step("get_all: top-level user_id (POST /v2/memories/ body user_id)")
    alice_texts = sorted([T_FOOD, T_HIKE, T_ASSIST, T_UA, T_RUN])
    check_eq(
        memory_texts(listed(client.get_all(user_id=alice), "get_all(user_id)")),
        alice_texts,
        "get_all(user_id=alice) memories",
    )
    check_eq(
        memory_texts(listed(client.get_all(agent_id=agent), "get_all(agent_id)")),
        sorted([T_UA, T_AGENT]),
        "get_all(agent_id) memories",
    )

    step("get_all: filters (AND, OR, wildcard)")
    got = listed(client.get_all(filters={"AND": [{"user_id": alice}, {"agent_id": agent}]}), "get_all(AND)")
    check_eq([m["id"] for m in got], [ua_id], "get_all(AND user+agent) ids")
    got = listed(client.get_all(filters={"OR": [{"agent_id": agent}, {"user_id": bob}]}), "get_all(OR)")
    check_eq(memory_texts(got), sorted([T_UA, T_AGENT, T_BOB1, T_BOB2]), "get_all(OR) memories")
    got = listed(client.get_all(filters={"AND": [{"user_id": alice}, {"run_id": "*"}]}), "get_all(run_id=*)")
    check_eq([m["id"] for m in got], [run_mem_id], "get_all(user, run_id='*') ids")

    step("get_all: pagination (page+page_size -> envelope passed through)")
    seen: list[str] = []
    pages = []
    for page in (1, 2, 3):
        resp = client.get_all(filters={"user_id": alice}, page=page, page_size=2)
        check_keys(resp, ["count", "next", "previous", "results"], f"get_all page {page}")
        check_eq(resp["count"], 5, f"page {page} count")
        pages.append(resp)
        seen += [m["id"] for m in resp["results"]]
    check_eq([len(p["results"]) for p in pages], [2, 2, 1], "page lengths for page_size=2")
    check(pages[0]["previous"] is None and pages[0]["next"], "page 1: previous=None, next=url", pages[0])
    check(pages[2]["previous"] and pages[2]["next"] is None, "page 3: previous=url, next=None", pages[2])
    check_eq(sorted(seen), sorted([food_id, hike_id, assist_id, ua_id, run_mem_id]), "ids across pages")

    step("users() lists the entities")
    resp = client.users()
    check_keys(resp, ["count", "results"], "users()")
    names = {(e.get("type"), e.get("name")) for e in resp["results"]}
    for entity in [("user", alice), ("user", bob), ("agent", agent), ("run", run_id)]:
        check(entity in names, f"users() lacks {entity}", resp)

    step("search: top-level user_id (the 1.0-era documented call)")
    results = listed(client.search("What is my favourite food?", user_id=alice), "search(user_id)")
    check(results, "search for food returned nothing")
    check_eq((results[0].get("id"), results[0].get("memory")), (food_id, T_FOOD), "search(food) first hit")
    check_scores(results, "search(user_id)")

    step("search: filters + top_k + threshold")
    results = listed(
        client.search("What is my favourite food?", filters={"user_id": alice}, top_k=2, threshold=0.1),
        "search(filters)",
    )
    check(results and len(results) <= 2, "search ignored top_k=2 or found nothing", results)
    check_eq(results[0].get("id"), food_id, "search(filters) first id")
    check_scores(results, "search(filters)", threshold=0.1)
    results = listed(
        client.search(
            "Which city is the user planning to visit?",
            filters={"AND": [{"user_id": alice}, {"run_id": run_id}]},
        ),
        "search(run)",
    )
    check_eq([m.get("id") for m in results], [run_mem_id], "search(user+run) ids")

    step("update text and metadata, then re-read")
    resp = client.update(food_id, text=T_FOOD_NEW, metadata={"topic": "food", "updated": True})
    check(isinstance(resp, dict), "update should return a JSON object", resp)
    mem = client.get(food_id)
    check_eq(
        (mem["memory"], mem["metadata"]),
        (T_FOOD_NEW, {"topic": "food", "updated": True}),
        "memory after update",
    )
    results = listed(client.search("pizza with mozzarella", user_id=alice, top_k=1), "search after update")
    check(results and results[0].get("id") == food_id, "search does not find the updated text", results)

    step("history: ADD then UPDATE")
    hist = client.history(food_id)
    check(isinstance(hist, list), "history should be a list", hist)
    events = {h.get("event"): h for h in hist}
    check("ADD" in events and "UPDATE" in events, "history lacks ADD or UPDATE", hist)
    for h in hist:
        check_keys(h, ["old_memory", "new_memory", "memory_id"], "history entry")
    check_eq((events["ADD"]["old_memory"], events["ADD"]["new_memory"]), (None, T_FOOD), "ADD (old, new)")
    check_eq(
        (events["UPDATE"]["old_memory"], events["UPDATE"]["new_memory"]),
        (T_FOOD, T_FOOD_NEW),
        "UPDATE (old, new)",
    )

    step("delete one memory, then get fails")
    resp = client.delete(assist_id)
    check(isinstance(resp.get("message"), str), "delete: no message", resp)
    expect_raises(MemoryNotFoundError, lambda: client.get(assist_id), "get(deleted)")
    check(assist_id not in by_id(listed(client.get_all(user_id=alice), "get_all")), "deleted memory listed")

    step("batch_update and batch_delete")
    resp = client.batch_update([{"memory_id": ua_id, "text": T_UA_NEW}])
    check(isinstance(resp.get("message"), str), "batch_update: no message", resp)
    check_eq(client.get(ua_id)["memory"], T_UA_NEW, "text after batch_update")
    resp = client.batch_delete([{"memory_id": ua_id}, {"memory_id": agent_mem_id}])
    check(isinstance(resp.get("message"), str), "batch_delete: no message", resp)
    for mid in (ua_id, agent_mem_id):
        expect_raises(MemoryNotFoundError, lambda mid=mid: client.get(mid), "get(batch-deleted)")

    step("delete_all for one user")
    resp = client.delete_all(user_id=bob)
    check(isinstance(resp.get("message"), str), "delete_all: no message", resp)
    check_eq(listed(client.get_all(user_id=bob), "get_all(bob)"), [], "bob's memories after delete_all")
    expect_raises(MemoryNotFoundError, lambda: client.get(bob1_id), "get(bob memory) after delete_all")
    check_eq(len(listed(client.get_all(user_id=alice), "get_all(alice)")), 3, "alice untouched by delete_all")

    step("delete_users for one user")
    resp = client.delete_users(user_id=alice)
    check_eq(resp, {"message": "Entity deleted successfully."}, "delete_users return")
    check_eq(listed(client.get_all(user_id=alice), "get_all(alice)"), [], "alice's memories after delete_users")
    names = {(e.get("type"), e.get("name")) for e in client.users()["results"]}
    check(("user", alice) not in names, "users() still lists the deleted user", names)

    delete_all_filters(client, AsyncMemoryClient)


def wrong_key() -> None:
    check_wrong_keys(
        MemoryClient,
        AuthenticationError,
        rejected={
            "get_all with a rejected key": lambda c: c.get_all(user_id="nobody"),
            "add with a rejected key": lambda c: c.add("hello", user_id="nobody", infer=False),
        },
    )


def infer() -> None:
    v1_infer(MemoryClient)


def graph() -> None:
    """enable_graph (the v1/v2-era graph memory): a processed v1.1 add reports added_entities; get_all and
    search (POST /v2/...) answer a top-level `relations` list next to the memories."""
    url, key = env()
    user = f"graph-{suffix()}"
    client = MemoryClient(api_key=key, host=url)
    step("add with enable_graph, async_mode=False -> relations.added_entities")
    resp = client.add("Maria works at Acme.", user_id=user, enable_graph=True, async_mode=False)
    check_keys(resp, ["results", "relations"], "graph add")
    check_eq(
        resp["relations"],
        {
            "added_entities": [[{"source": "Maria", "relationship": "works_at", "target": "Acme"}]],
            "deleted_entities": [],
        },
        "graph add relations",
    )
    step("queued add with enable_graph, polled to SUCCEEDED")
    resp = client.add("Maria lives in Porto.", user_id=user, enable_graph=True)
    poll_event(client.client, check_uuid(resp["results"][0]["event_id"], "queued event_id"))
    step("get_all(enable_graph=True) -> relations")
    listed_now = client.get_all(user_id=user, enable_graph=True)
    check_keys(listed_now, ["results", "relations"], "get_all with graph")
    check_eq(len(listed_now["results"]), 2, "memories listed with graph")
    check_relations(listed_now["relations"], {("Maria", "works_at", "Acme"), ("Maria", "lives_in", "Porto")}, "get_all")
    step("search(enable_graph=True) -> scored relations")
    found = client.search("Where does Maria work?", user_id=user, enable_graph=True)
    check_keys(found, ["results", "relations"], "search with graph")
    check_relations(found["relations"], {("Maria", "works_at", "Acme")}, "search", scored=True)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "full"
    run({"wrong-key": wrong_key, "infer": infer, "graph": graph}.get(mode, scenario), f"{NAME} {mode}")
