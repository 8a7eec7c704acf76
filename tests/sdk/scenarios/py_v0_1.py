"""Scenario for the last Python SDK 0.1.x (mem0ai 0.1.118).

Run with the SDK venv's interpreter:
    MEMSERVER_URL=http://127.0.0.1:8123 MEMSERVER_KEY=... MEM0_TELEMETRY=false python py_v0_1.py [wrong-key]

What mem0ai 0.1.118 sends (read from mem0/client/main.py). org_id/project_id from the ping reply are
injected into every call that goes through _prepare_params (body for POSTs, query for GET/PUT/DELETE).
Every response is returned raw - no client-side wrapping at all.
  ctor        GET  /v1/ping/              -> JSON parsed before the status check; non-2xx -> ValueError
  add         POST /v1/memories/  body {messages (list only), user_id..., metadata, infer, async_mode?
                                        (not sent unless given), output_format: "v1.1", version: "v2", ...}
  get_all     version="v1" (default): GET /v1/memories/?user_id=..&org_id=..&project_id=..[&page=&page_size=]
                (metadata=/filters= dicts arrive as their str(), through httpx)
                -> bare list; {count,next,previous,results} when page+page_size
              version="v2": POST /v2/memories/[?page=&page_size=] body {filters, org_id, project_id}
                -> bare list; envelope when page+page_size
  search      version="v1" (default): POST /v1/memories/search/ body {query, user_id..., top_k, org_id, ...}
                -> bare list, or {"results", "relations"} with output_format="v1.1"
              version="v2": POST /v2/memories/search/ body {query, filters, top_k, threshold, ...}
                -> bare list
  update      PUT  /v1/memories/{id}/  body {text?, metadata?}
  others      as 1.0.x (/v1/memories/{id}/history/, DELETE /v1/memories/?user_id, /v1/entities/,
              DELETE /v2/entities/{type}/{name}/, /v1/batch/).
"""

from __future__ import annotations

import importlib.metadata
import sys

from _common import (
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
from mem0.exceptions import AuthenticationError, MemoryNotFoundError

NAME = f"py-v0.1 mem0ai {importlib.metadata.version('mem0ai')}"

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


def msg(text: str, role: str = "user") -> list[dict]:
    return [{"role": role, "content": text}]


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


def bare_list(resp, what: str) -> list[dict]:
    check(isinstance(resp, list), f"{what}: this generation expects a bare JSON array", resp)
    return resp


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

    step("add: user scope, async_mode=False")
    resp = client.add(
        msg(T_FOOD),
        user_id=alice,
        infer=False,
        async_mode=False,
        output_format="v1.1",
        metadata={"topic": "food", "priority": 1},
    )
    (food_id,) = added_sync(resp, [T_FOOD], "add user")

    step("add: async_mode not sent (server default), found afterwards via get_all")
    resp = client.add(
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": T_HIKE},
            {"role": "assistant", "content": T_ASSIST},
        ],
        user_id=alice,
        infer=False,
        output_format="v1.1",
        metadata={"topic": "misc"},
    )
    check_keys(resp, ["results"], "add (default async_mode)")
    check(isinstance(resp["results"], list) and resp["results"], "add: results should be a non-empty list", resp)

    def find_conversation():
        found = {m["memory"]: m["id"] for m in bare_list(client.get_all(user_id=alice), "get_all")}
        return found if T_HIKE in found and T_ASSIST in found else None

    found = wait_for(find_conversation, "the default-async add to be listed")
    hike_id, assist_id = found[T_HIKE], found[T_ASSIST]

    step("add: user+agent, agent only, user+run, second user")
    (ua_id,) = added_sync(
        client.add(
            msg(T_UA),
            user_id=alice,
            agent_id=agent,
            infer=False,
            async_mode=False,
            output_format="v1.1",
            metadata={"topic": "flights"},
        ),
        [T_UA],
        "add user+agent",
    )
    (agent_mem_id,) = added_sync(
        client.add(msg(T_AGENT, "assistant"), agent_id=agent, infer=False, async_mode=False, output_format="v1.1"),
        [T_AGENT],
        "add agent only",
    )
    (run_mem_id,) = added_sync(
        client.add(
            msg(T_RUN),
            user_id=alice,
            run_id=run_id,
            infer=False,
            async_mode=False,
            output_format="v1.1",
            metadata={"topic": "travel"},
        ),
        [T_RUN],
        "add user+run",
    )
    bob1_id, _ = added_sync(
        client.add(msg(T_BOB1) + msg(T_BOB2), user_id=bob, infer=False, async_mode=False, output_format="v1.1"),
        [T_BOB1, T_BOB2],
        "add bob",
    )

    step("get by id")
    mem = client.get(food_id)
    check_keys(mem, ["id", "memory", "user_id", "metadata", "created_at", "updated_at"], "get(food)")
    check_eq((mem["id"], mem["memory"], mem["user_id"]), (food_id, T_FOOD, alice), "get(food) id/memory/user")
    check_eq(mem["metadata"], {"topic": "food", "priority": 1}, "get(food).metadata")
    check_timestamp(mem["updated_at"], "get(food).updated_at")
    mem = client.get(run_mem_id)
    check_eq((mem.get("run_id"), mem.get("session_id")), (run_id, run_id), "get(run) (run_id, session_id)")

    step("get_all v1: GET /v1/memories/?user_id= -> bare list")
    alice_texts = sorted([T_FOOD, T_HIKE, T_ASSIST, T_UA, T_RUN])
    check_eq(
        memory_texts(bare_list(client.get_all(user_id=alice), "get_all v1")),
        alice_texts,
        "get_all(user_id=alice)",
    )
    check_eq(
        memory_texts(bare_list(client.get_all(agent_id=agent), "get_all v1 agent")),
        sorted([T_UA, T_AGENT]),
        "get_all(agent_id)",
    )
    check_eq(
        [m["id"] for m in bare_list(client.get_all(run_id=run_id), "get_all v1 run")],
        [run_mem_id],
        "get_all(run_id) ids",
    )

    step("get_all v1 with metadata={...} and filters={...}: sent as the dicts' str() in the query")
    check_eq(
        [m["id"] for m in bare_list(client.get_all(user_id=alice, metadata={"topic": "food"}), "get_all v1 meta")],
        [food_id],
        "get_all(user_id, metadata) ids",
    )
    check_eq(
        [m["id"] for m in bare_list(client.get_all(filters={"user_id": alice, "run_id": run_id}), "v1 filters")],
        [run_mem_id],
        "get_all(filters) ids",
    )

    step("get_all v1 with page+page_size -> envelope")
    seen: list[str] = []
    for page, expected_len in ((1, 3), (2, 2)):
        resp = client.get_all(user_id=alice, page=page, page_size=3)
        check_keys(resp, ["count", "next", "previous", "results"], f"get_all v1 page {page}")
        check_eq((resp["count"], len(resp["results"])), (5, expected_len), f"v1 page {page} (count, len)")
        seen += [m["id"] for m in resp["results"]]
        if page == 1:
            check(resp["next"] and resp["previous"] is None, "v1 page 1: next=url, previous=None", resp)
        else:
            check(resp["next"] is None and resp["previous"], "v1 page 2: next=None, previous=url", resp)
    check_eq(sorted(seen), sorted([food_id, hike_id, assist_id, ua_id, run_mem_id]), "v1 ids across pages")

    step("get_all v2: filters (AND / OR / wildcard) -> bare list")
    got = bare_list(
        client.get_all(version="v2", filters={"AND": [{"user_id": alice}, {"agent_id": agent}]}),
        "get_all v2 AND",
    )
    check_eq([m["id"] for m in got], [ua_id], "get_all v2 AND ids")
    got = bare_list(
        client.get_all(version="v2", filters={"OR": [{"agent_id": agent}, {"user_id": bob}]}), "get_all v2 OR"
    )
    check_eq(memory_texts(got), sorted([T_UA, T_AGENT, T_BOB1, T_BOB2]), "get_all v2 OR memories")
    got = bare_list(
        client.get_all(version="v2", filters={"AND": [{"user_id": alice}, {"run_id": "*"}]}),
        "get_all v2 wildcard",
    )
    check_eq([m["id"] for m in got], [run_mem_id], "get_all v2 run_id='*' ids")

    step("get_all v2 with page+page_size -> envelope")
    resp = client.get_all(version="v2", filters={"user_id": alice}, page=2, page_size=2)
    check_keys(resp, ["count", "next", "previous", "results"], "get_all v2 page 2")
    check_eq((resp["count"], len(resp["results"])), (5, 2), "v2 page 2 (count, len)")
    check(resp["next"] and resp["previous"], "v2 page 2 of 3: next and previous are urls", resp)

    step("users() lists the entities")
    resp = client.users()
    check_keys(resp, ["count", "results"], "users()")
    names = {(e.get("type"), e.get("name")) for e in resp["results"]}
    for entity in [("user", alice), ("user", bob), ("agent", agent), ("run", run_id)]:
        check(entity in names, f"users() lacks {entity}", resp)

    step("search v1: top-level user_id + top_k -> bare list")
    results = bare_list(client.search("What is my favourite food?", user_id=alice, top_k=3), "search v1")
    check(results and len(results) <= 3, "search v1 found nothing or ignored top_k", results)
    check_eq((results[0].get("id"), results[0].get("memory")), (food_id, T_FOOD), "search v1 first hit")
    check_scores(results, "search v1")

    step("search v1 with output_format=v1.1 -> {results, relations}")
    resp = client.search("What is my favourite food?", user_id=alice, output_format="v1.1")
    check_keys(resp, ["results"], "search v1.1")
    check_eq(resp["results"][0].get("id") if resp["results"] else None, food_id, "search v1.1 first id")

    step("search v2: filters + top_k + threshold -> bare list")
    results = bare_list(
        client.search(
            "Which city is the user planning to visit?",
            version="v2",
            filters={"AND": [{"user_id": alice}, {"run_id": run_id}]},
            top_k=5,
            threshold=0.1,
        ),
        "search v2",
    )
    check_eq([m.get("id") for m in results], [run_mem_id], "search v2 (user+run) ids")
    check_scores(results, "search v2", threshold=0.1)

    step("update text and metadata, then re-read")
    resp = client.update(food_id, text=T_FOOD_NEW, metadata={"topic": "food", "updated": True})
    check(isinstance(resp, dict), "update should return a JSON object", resp)
    mem = client.get(food_id)
    check_eq(
        (mem["memory"], mem["metadata"]),
        (T_FOOD_NEW, {"topic": "food", "updated": True}),
        "memory after update",
    )

    step("history: ADD then UPDATE")
    hist = client.history(food_id)
    check(isinstance(hist, list), "history should be a list", hist)
    events = {h.get("event"): h for h in hist}
    check("ADD" in events and "UPDATE" in events, "history lacks ADD or UPDATE", hist)
    for h in hist:
        check_keys(h, ["memory_id", "old_memory", "new_memory"], "history entry")
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
    check_eq(bare_list(client.get_all(user_id=bob), "get_all(bob)"), [], "bob's memories after delete_all")
    expect_raises(MemoryNotFoundError, lambda: client.get(bob1_id), "get(bob memory) after delete_all")
    check_eq(
        memory_texts(bare_list(client.get_all(user_id=alice), "get_all(alice)")),
        sorted([T_FOOD_NEW, T_HIKE, T_RUN]),
        "alice's memories after the deletes",
    )

    step("delete_users for one user")
    resp = client.delete_users(user_id=alice)
    check_eq(resp, {"message": "Entity deleted successfully."}, "delete_users return")
    check_eq(bare_list(client.get_all(user_id=alice), "get_all(alice)"), [], "alice's memories after delete_users")
    names = {(e.get("type"), e.get("name")) for e in client.users()["results"]}
    check(("user", alice) not in names, "users() still lists the deleted user", names)

    delete_all_filters(client, AsyncMemoryClient)


def wrong_key() -> None:
    check_wrong_keys(
        MemoryClient,
        AuthenticationError,
        rejected={"get_all with a rejected key": lambda c: c.get_all(user_id="nobody")},
    )


def infer() -> None:
    v1_infer(MemoryClient)


def graph() -> None:
    """enable_graph on 0.1.x: the v1.1 add (version v2) reports added_entities; get_all/search with
    version="v2" and v1 search with output_format v1.1 answer a top-level `relations` list."""
    url, key = env()
    user = f"graph-{suffix()}"
    client = MemoryClient(api_key=key, host=url)
    step("add with enable_graph, async_mode=False -> relations.added_entities")
    resp = client.add(
        [{"role": "user", "content": "Maria works at Acme."}], user_id=user, enable_graph=True, async_mode=False
    )
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
    resp = client.add([{"role": "user", "content": "Maria lives in Porto."}], user_id=user, enable_graph=True)
    poll_event(client.client, check_uuid(resp["results"][0]["event_id"], "queued event_id"))
    step("get_all(version='v2', enable_graph=True) -> relations")
    listed_now = client.get_all(version="v2", user_id=user, enable_graph=True)
    check_keys(listed_now, ["results", "relations"], "get_all v2 with graph")
    check_eq(len(listed_now["results"]), 2, "memories listed with graph")
    check_relations(listed_now["relations"], {("Maria", "works_at", "Acme"), ("Maria", "lives_in", "Porto")}, "get_all")
    step("search(version='v2', enable_graph=True) -> scored relations")
    found = client.search("Where does Maria work?", version="v2", user_id=user, enable_graph=True)
    check_keys(found, ["results", "relations"], "search v2 with graph")
    check_relations(found["relations"], {("Maria", "works_at", "Acme")}, "search v2", scored=True)
    step("v1 search, output_format v1.1, enable_graph -> scored relations")
    found = client.search("Maria", user_id=user, enable_graph=True, output_format="v1.1")
    check_keys(found, ["results", "relations"], "search v1 with graph")
    check_relations(
        found["relations"], {("Maria", "works_at", "Acme"), ("Maria", "lives_in", "Porto")}, "search v1", scored=True
    )


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "full"
    run({"wrong-key": wrong_key, "infer": infer, "graph": graph}.get(mode, scenario), f"{NAME} {mode}")
