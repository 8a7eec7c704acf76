"""Scenario for the current Python SDK (mem0ai 2.x, MemoryClient, /v3 endpoints).

Run with the SDK venv's interpreter:
    MEMSERVER_URL=http://127.0.0.1:8123 MEMSERVER_KEY=... MEM0_TELEMETRY=false \\
        python py_current.py [wrong-key]

What mem0ai 2.2.1 sends (read from mem0/client/main.py):
  ctor          GET  /v1/ping/   -> needs {"org_id","project_id",...}; non-2xx -> ValueError
  add           POST /v3/memories/add/    body {messages, user_id|agent_id|run_id|filters, metadata, infer}
  get           GET  /v1/memories/{id}/
  get_all       POST /v3/memories/[?page=&page_size=]  body {filters}
  search        POST /v3/memories/search/ body {query, filters, top_k, threshold, reference_date}
  update        PUT  /v1/memories/{id}/   body {text?, metadata?}
  history       GET  /v1/memories/{id}/history/
  delete        DELETE /v1/memories/{id}/
  delete_all    DELETE /v1/memories/?user_id=...  or  ?filters=<str(dict)> (filters=, DeleteAllMemoryOptions)
  users         GET  /v1/entities/
  delete_users  DELETE /v2/entities/user/{name}/
  batch_update  PUT  /v1/batch/   body {memories: [{memory_id, text, metadata?}]}
  batch_delete  DELETE /v1/batch/ body {memories: [{memory_id}]}
Responses are returned to the caller untouched.
"""

from __future__ import annotations

import importlib.metadata
import sys

from _common import (
    INFER_TEXT,
    by_id,
    check,
    check_eq,
    check_inferred_event,
    check_keys,
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
)
from mem0 import AsyncMemoryClient, MemoryClient
from mem0.client.types import AddMemoryOptions, DeleteAllMemoryOptions, GetAllMemoryOptions, SearchMemoryOptions
from mem0.exceptions import AuthenticationError, MemoryNotFoundError, ValidationError

NAME = f"py-current mem0ai {importlib.metadata.version('mem0ai')}"

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
T_RUN_NEW = "During this session the user is planning a trip to Porto in June."


def added(resp, expected_texts: list[str], what: str) -> list[str]:
    """Check a v3 infer=False add response and return the new memory ids (in response order)."""
    check_keys(resp, ["status", "event_id", "results"], what)
    check_eq(resp["status"], "SUCCEEDED", f"{what}: status")
    check_uuid(resp["event_id"], f"{what}: event_id")
    check(isinstance(resp.get("message"), str), f"{what}: 'message' should be a string", resp)
    results = resp["results"]
    check(isinstance(results, list), f"{what}: results should be a list", resp)
    check_eq(
        sorted(r.get("data", {}).get("memory") for r in results),
        sorted(expected_texts),
        f"{what}: stored texts (results[].data.memory)",
    )
    for r in results:
        check_eq(r.get("event"), "ADD", f"{what}: results[].event")
        check_uuid(r.get("id"), f"{what}: results[].id")
    text_to_id = {r["data"]["memory"]: r["id"] for r in results}
    return [text_to_id[t] for t in expected_texts]


def list_all(client, filters, what: str, **kw) -> dict:
    resp = client.get_all(filters=filters, **kw)
    check_keys(resp, ["count", "next", "previous", "results"], what)
    check(isinstance(resp["results"], list), f"{what}: results should be a list", resp)
    check(isinstance(resp["count"], int), f"{what}: count should be an int", resp)
    return resp


def scenario() -> None:
    url, key = env()
    sfx = suffix()
    alice, bob = f"alice-{sfx}", f"bob-{sfx}"
    agent, run_id = f"agent-{sfx}", f"run-{sfx}"

    step("construct MemoryClient (GET /v1/ping/)")
    client = MemoryClient(api_key=key, host=url)
    check(isinstance(client.org_id, str) and client.org_id, "org_id not taken from ping", client.org_id)
    check(isinstance(client.project_id, str) and client.project_id, "project_id not taken from ping")

    step("add: user scope, infer=False, metadata, top-level user_id")
    resp = client.add(
        [{"role": "user", "content": T_FOOD}],
        user_id=alice,
        infer=False,
        metadata={"topic": "food", "priority": 1},
    )
    (food_id,) = added(resp, [T_FOOD], "add user")

    step("add: several messages (system skipped, user+assistant stored)")
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
    hike_id, assist_id = added(resp, [T_HIKE, T_ASSIST], "add user conversation")

    step("add: user+agent scope passed in filters (AddMemoryOptions), string input")
    resp = client.add(
        T_UA,
        AddMemoryOptions(filters={"user_id": alice, "agent_id": agent}, infer=False, metadata={"topic": "flights"}),
    )
    (ua_id,) = added(resp, [T_UA], "add user+agent via filters")

    step("add: agent-only scope passed as filters kwarg")
    resp = client.add([{"role": "assistant", "content": T_AGENT}], filters={"agent_id": agent}, infer=False)
    (agent_mem_id,) = added(resp, [T_AGENT], "add agent only")

    step("add: user+run scope with metadata")
    resp = client.add(T_RUN, user_id=alice, run_id=run_id, infer=False, metadata={"topic": "travel"})
    (run_mem_id,) = added(resp, [T_RUN], "add user+run")

    step("add: second user")
    resp = client.add(
        [{"role": "user", "content": T_BOB1}, {"role": "user", "content": T_BOB2}], user_id=bob, infer=False
    )
    bob1_id, bob2_id = added(resp, [T_BOB1, T_BOB2], "add bob")
    all_ids = [food_id, hike_id, assist_id, ua_id, agent_mem_id, run_mem_id, bob1_id, bob2_id]
    check(len(set(all_ids)) == len(all_ids), "memory ids are not unique", all_ids)

    step("get by id")
    mem = client.get(food_id)
    check_keys(mem, ["id", "memory", "user_id", "metadata", "created_at", "updated_at"], "get(food)")
    check_eq(mem["id"], food_id, "get(food).id")
    check_eq(mem["memory"], T_FOOD, "get(food).memory")
    check_eq(mem["user_id"], alice, "get(food).user_id")
    check_eq(mem["metadata"], {"topic": "food", "priority": 1}, "get(food).metadata")
    check_timestamp(mem["created_at"], "get(food).created_at")
    check_timestamp(mem["updated_at"], "get(food).updated_at")
    mem = client.get(ua_id)
    check_eq((mem.get("user_id"), mem.get("agent_id")), (alice, agent), "get(user+agent) (user_id, agent_id)")
    mem = client.get(agent_mem_id)
    check_eq((mem.get("user_id"), mem.get("agent_id")), (None, agent), "get(agent only) (user_id, agent_id)")
    mem = client.get(run_mem_id)
    check_eq((mem.get("run_id"), mem.get("session_id")), (run_id, run_id), "get(run) (run_id, session_id)")
    check_eq(mem.get("metadata"), {"topic": "travel"}, "get(run).metadata")
    expect_raises(ValidationError, lambda: client.get("not-a-uuid"), "get('not-a-uuid') (400)")
    expect_raises(
        MemoryNotFoundError,
        lambda: client.get("00000000-0000-4000-8000-000000000000"),
        "get(unknown uuid) (404)",
    )

    step("get_all: one user")
    alice_texts = sorted([T_FOOD, T_HIKE, T_ASSIST, T_UA, T_RUN])
    resp = list_all(client, {"user_id": alice}, "get_all(user_id)")
    check_eq(memory_texts(resp["results"]), alice_texts, "get_all(user_id) memories")
    check_eq(resp["count"], 5, "get_all(user_id).count")
    check_eq((resp["next"], resp["previous"]), (None, None), "get_all(user_id) (next, previous)")

    step("get_all: AND filter")
    resp = list_all(client, {"AND": [{"user_id": alice}, {"agent_id": agent}]}, "get_all(AND)")
    check_eq([m["id"] for m in resp["results"]], [ua_id], "get_all(AND user+agent) ids")

    step("get_all: OR filter")
    resp = list_all(client, {"OR": [{"agent_id": agent}, {"user_id": bob}]}, "get_all(OR)")
    check_eq(memory_texts(resp["results"]), sorted([T_UA, T_AGENT, T_BOB1, T_BOB2]), "get_all(OR) memories")

    step("get_all: wildcard and metadata filters")
    resp = list_all(client, {"AND": [{"user_id": alice}, {"run_id": "*"}]}, "get_all(run_id=*)")
    check_eq([m["id"] for m in resp["results"]], [run_mem_id], "get_all(user, run_id='*') ids")
    resp = list_all(client, {"AND": [{"user_id": alice}, {"metadata": {"topic": "food"}}]}, "get_all(meta)")
    check_eq([m["id"] for m in resp["results"]], [food_id], "get_all(user, metadata.topic=food) ids")
    resp = client.get_all(GetAllMemoryOptions(filters={"run_id": run_id}))
    check_eq([m["id"] for m in resp["results"]], [run_mem_id], "get_all(GetAllMemoryOptions run_id) ids")

    step("get_all: pagination page/page_size")
    seen: list[str] = []
    pages = []
    for page in (1, 2, 3):
        resp = list_all(client, {"user_id": alice}, f"get_all page {page}", page=page, page_size=2)
        pages.append(resp)
        check_eq(resp["count"], 5, f"page {page} count (total, not page length)")
        seen += [m["id"] for m in resp["results"]]
    check_eq([len(p["results"]) for p in pages], [2, 2, 1], "page lengths for page_size=2")
    check(
        pages[0]["previous"] is None and isinstance(pages[0]["next"], str),
        "page 1: previous=None, next=url",
        pages[0],
    )
    check(
        isinstance(pages[1]["previous"], str) and isinstance(pages[1]["next"], str),
        "page 2: previous and next are urls",
        pages[1],
    )
    check(
        isinstance(pages[2]["previous"], str) and pages[2]["next"] is None,
        "page 3: previous=url, next=None",
        pages[2],
    )
    check_eq(sorted(seen), sorted([food_id, hike_id, assist_id, ua_id, run_mem_id]), "ids across pages")

    step("users() lists the entities")
    resp = client.users()
    check_keys(resp, ["count", "results"], "users()")
    names = {(e.get("type"), e.get("name")) for e in resp["results"]}
    for entity in [("user", alice), ("user", bob), ("agent", agent), ("run", run_id)]:
        check(entity in names, f"users() lacks {entity}", resp)
    check(all(isinstance(e.get("id"), str) for e in resp["results"]), "entity ids should be strings", resp)

    step("search: query + filters + top_k + threshold")
    resp = client.search("What is my favourite food?", filters={"user_id": alice}, top_k=3, threshold=0.1)
    check_keys(resp, ["results"], "search")
    results = resp["results"]
    check(results, "search for food returned nothing", resp)
    check_eq(results[0].get("id"), food_id, "search(food) first id")
    check_eq(results[0].get("memory"), T_FOOD, "search(food) first memory")
    check(len(results) <= 3, "search ignored top_k=3", results)
    check_scores(results, "search(food)", threshold=0.1)
    check(all(m.get("user_id") == alice for m in results), "search returned another user's memory", results)

    resp = client.search(
        "Which city is the user planning to visit?", SearchMemoryOptions(filters={"run_id": run_id}, top_k=5)
    )
    check_eq([m.get("id") for m in resp["results"]], [run_mem_id], "search(run filter) ids")
    check_eq(resp["results"][0].get("run_id"), run_id, "search result run_id")

    resp = client.search(
        "In which language and tone must the support agent answer?", filters={"agent_id": agent}, top_k=1
    )
    check_eq(len(resp["results"]), 1, "search(agent, top_k=1) length")
    check_eq(resp["results"][0].get("id"), agent_mem_id, "search(agent) first id")

    resp = client.search("hiking in the mountains", filters={"user_id": alice}, threshold=0.3)
    check_scores(resp["results"], "search(threshold=0.3)", threshold=0.3)
    check(
        resp["results"] and resp["results"][0].get("id") == hike_id,
        "search(hiking) first should be hike",
        resp,
    )

    step("update text and metadata, then re-read")
    resp = client.update(food_id, text=T_FOOD_NEW, metadata={"topic": "food", "updated": True})
    check(isinstance(resp, dict), "update should return a JSON object", resp)
    mem = client.get(food_id)
    check_eq(mem["memory"], T_FOOD_NEW, "memory text after update")
    check_eq(mem["metadata"], {"topic": "food", "updated": True}, "metadata after update")
    client.update(hike_id, metadata={"topic": "outdoors"})
    mem = client.get(hike_id)
    check_eq((mem["memory"], mem["metadata"]), (T_HIKE, {"topic": "outdoors"}), "metadata-only update")
    resp = client.search("pizza with mozzarella", filters={"user_id": alice}, top_k=1)
    check(
        resp["results"] and resp["results"][0].get("id") == food_id,
        "search does not find the updated text (embedding not refreshed?)",
        resp,
    )
    check_eq(resp["results"][0].get("memory"), T_FOOD_NEW, "search returns updated text")

    step("history: ADD then UPDATE")
    hist = client.history(food_id)
    check(isinstance(hist, list), "history should be a list", hist)
    events = {h.get("event"): h for h in hist}
    check("ADD" in events and "UPDATE" in events, "history lacks ADD or UPDATE entries", hist)
    for h in hist:
        check_keys(h, ["id", "memory_id", "old_memory", "new_memory", "event", "created_at"], "history entry")
        check_eq(h["memory_id"], food_id, "history entry memory_id")
    check_eq((events["ADD"]["old_memory"], events["ADD"]["new_memory"]), (None, T_FOOD), "ADD (old, new)")
    check_eq(
        (events["UPDATE"]["old_memory"], events["UPDATE"]["new_memory"]),
        (T_FOOD, T_FOOD_NEW),
        "UPDATE (old, new)",
    )

    step("delete one memory, then get fails")
    resp = client.delete(assist_id)
    check(isinstance(resp, dict) and isinstance(resp.get("message"), str), "delete: no message", resp)
    expect_raises(MemoryNotFoundError, lambda: client.get(assist_id), "get(deleted)")
    expect_raises(MemoryNotFoundError, lambda: client.delete(assist_id), "delete(deleted)")
    resp = list_all(client, {"user_id": alice}, "get_all after delete")
    check(assist_id not in by_id(resp["results"]), "deleted memory still listed", resp)
    check_eq(resp["count"], 4, "count after delete")

    step("batch_update")
    resp = client.batch_update(
        [
            {"memory_id": ua_id, "text": T_UA_NEW},
            {"memory_id": run_mem_id, "text": T_RUN_NEW, "metadata": {"topic": "travel", "batch": True}},
        ]
    )
    check(isinstance(resp, dict) and isinstance(resp.get("message"), str), "batch_update: no message", resp)
    check_eq(client.get(ua_id)["memory"], T_UA_NEW, "text after batch_update")
    mem = client.get(run_mem_id)
    check_eq(
        (mem["memory"], mem["metadata"]),
        (T_RUN_NEW, {"topic": "travel", "batch": True}),
        "text+metadata after batch_update",
    )

    step("batch_delete")
    resp = client.batch_delete([{"memory_id": ua_id}, {"memory_id": agent_mem_id}])
    check(isinstance(resp, dict) and isinstance(resp.get("message"), str), "batch_delete: no message", resp)
    for mid in (ua_id, agent_mem_id):
        expect_raises(MemoryNotFoundError, lambda mid=mid: client.get(mid), "get(batch-deleted)")

    step("delete_all for one user")
    resp = client.delete_all(user_id=bob)
    check(isinstance(resp, dict) and isinstance(resp.get("message"), str), "delete_all: no message", resp)
    resp = list_all(client, {"user_id": bob}, "get_all(bob) after delete_all")
    check_eq((resp["count"], resp["results"]), (0, []), "bob's memories after delete_all")
    expect_raises(MemoryNotFoundError, lambda: client.get(bob1_id), "get(bob memory) after delete_all")
    check_eq(
        len(list_all(client, {"user_id": alice}, "alice after bob's delete_all")["results"]),
        3,
        "alice's memories untouched by bob's delete_all",
    )

    step("delete_users for one user")
    resp = client.delete_users(user_id=alice)
    check_eq(resp, {"message": "Entity deleted successfully."}, "delete_users return")
    resp = list_all(client, {"user_id": alice}, "get_all(alice) after delete_users")
    check_eq(resp["count"], 0, "alice's memories after delete_users")
    expect_raises(MemoryNotFoundError, lambda: client.get(food_id), "get(alice memory) after delete_users")
    names = {(e.get("type"), e.get("name")) for e in client.users()["results"]}
    check(("user", alice) not in names, "users() still lists the deleted user", names)

    delete_all_filters(client, AsyncMemoryClient)
    step("delete_all(DeleteAllMemoryOptions(filters=...)), as the type's docstring asks")
    (erin_id,) = added(
        client.add("Erin rows on the river.", user_id=f"erin-{sfx}", infer=False),
        ["Erin rows on the river."],
        "add erin",
    )
    resp = client.delete_all(DeleteAllMemoryOptions(filters={"user_id": f"erin-{sfx}"}))
    check_eq(resp.get("deleted_count"), 1, "delete_all(DeleteAllMemoryOptions) deleted_count")
    expect_raises(MemoryNotFoundError, lambda: client.get(erin_id), "get(erin's memory) after delete_all")
    step("search with reference_date: the dinner of the time asked about ranks first")
    maya = f"maya-{sfx}"
    told = {"Tokyo": 1741809600, "Paris": 1742547600, "Lisbon": 1718049600}  # 03-12, 03-21 2025; 06-10 2024
    dinners = {}
    for city, ts in told.items():
        text = f"I had dinner with Maya in {city} yesterday."
        (dinners[city],) = added(client.add(text, user_id=maya, infer=False, timestamp=ts), [text], f"add {city}")
    last_week = "Which city did I have dinner with Maya in last week?"
    resp = client.search(last_week, filters={"user_id": maya}, reference_date="2025-03-21")
    check_eq(resp["results"][0].get("id"), dinners["Tokyo"], "search(last week, reference_date='2025-03-21') first")
    check(isinstance(resp["results"][0].get("score_reasons", {}).get("temporal"), str), "no score_reasons", resp)
    resp = client.search(
        "Which city did I have dinner with Maya in last year?",
        SearchMemoryOptions(filters={"user_id": maya}, reference_date=1742558400),  # 2025-03-21T12:00Z
    )
    check_eq(resp["results"][0].get("id"), dinners["Lisbon"], "search(last year, reference_date=int) first")
    mem = client.get(dinners["Tokyo"])
    check_eq(mem.get("event_period", {}).get("start", "")[:10], "2025-03-11", "event_period of 'yesterday'")


def wrong_key() -> None:
    check_wrong_keys(
        MemoryClient,
        AuthenticationError,
        rejected={"get_all with a rejected key": lambda c: c.get_all(filters={"user_id": "nobody"})},
        headerless={"search without Authorization header": lambda c: c.search("x", filters={"user_id": "nobody"})},
    )


def infer() -> None:
    """infer=true (the default): the add is a PENDING event; polled, it lists the extracted memory."""
    url, key = env()
    user = f"tea-{suffix()}"
    client = MemoryClient(api_key=key, host=url)
    step("add without infer (default true) -> PENDING event")
    resp = client.add([{"role": "user", "content": INFER_TEXT}], user_id=user)
    check_eq(resp.get("status"), "PENDING", "add status")
    event_id = check_uuid(resp.get("event_id"), "add event_id")
    step("poll the event until SUCCEEDED")
    memory_id = check_inferred_event(poll_event(client.client, event_id), "inferred add")
    step("the extracted memory is listed, readable and searchable")
    page = client.get_all(filters={"user_id": user})
    check_eq([m["id"] for m in page["results"]], [memory_id], "get_all after the inferred add")
    check_eq(client.get(memory_id)["memory"], INFER_TEXT, "get of the inferred memory")
    hits = client.search("what does the user drink in the morning?", filters={"user_id": user})["results"]
    check(hits and hits[0]["id"] == memory_id, "search should find the inferred memory first", hits)
    step("the same statement again -> NOOP, still one memory")
    again = client.add([{"role": "user", "content": INFER_TEXT}], user_id=user)
    event = poll_event(client.client, again["event_id"])
    check_eq([r["event"] for r in event["results"]], ["NOOP"], "repeated statement")
    check_eq(len(client.get_all(filters={"user_id": user})["results"]), 1, "memories after the repeat")


R_PIZZA = "My favourite food is Neapolitan pizza."
R_PASTA = "I like fresh pasta with basil for dinner."
R_ESPRESSO = "I drink an espresso after lunch."  # what the scripted reranker prefers (tests/sdk)


def rerank() -> None:
    """search(..., rerank=True) against a memserver whose reranker is the fake /rerank server, scripted to put
    the memory about espresso first and to answer 503 to a query that says "outage"."""
    url, key = env()
    user = f"rr-{suffix()}"
    client = MemoryClient(api_key=key, host=url)
    for text in (R_PIZZA, R_PASTA, R_ESPRESSO):
        client.add([{"role": "user", "content": text}], user_id=user, infer=False)
    query = "What food does the user like?"
    step("rerank=False: the hybrid order, no rerank fields")
    plain = client.search(query, filters={"user_id": user}, threshold=0)["results"]
    check_eq(sorted(memory_texts(plain)), sorted([R_PIZZA, R_PASTA, R_ESPRESSO]), "search(rerank=False) texts")
    check(plain[0]["memory"] != R_ESPRESSO, "the hybrid order should not already put espresso first", plain)
    check(all("reranker" not in h for h in plain), "rerank=False hits carry no reranker", plain)
    step("rerank=True: the reranker's relevance order")
    hits = client.search(query, filters={"user_id": user}, threshold=0, rerank=True)["results"]
    check_eq(hits[0]["memory"], R_ESPRESSO, "search(rerank=True) first")
    check_eq({h["reranker"] for h in hits}, {"cohere"}, "reranker of every hit")
    check_eq({h["rerank_error"] for h in hits}, {None}, "rerank_error of every hit")
    relevance = [h["score_breakdown"]["rerank"] for h in hits]
    check(relevance == sorted(relevance, reverse=True), "hits ordered by score_breakdown.rerank", relevance)
    # ordered by relevance, not by `score` (the hybrid score, which keeps its meaning)
    check(all(0 < h["score"] <= 1 for h in hits), "scores in (0, 1]", hits)
    typed = client.search(query, SearchMemoryOptions(filters={"user_id": user}, threshold=0, rerank=True))
    check_eq(typed["results"][0]["memory"], R_ESPRESSO, "search(SearchMemoryOptions(rerank=True)) first")
    step("a failing reranker: still 200, in hybrid order, with the reason")
    outage = f"{query} outage"
    plain = client.search(outage, filters={"user_id": user}, threshold=0)["results"]
    hits = client.search(outage, filters={"user_id": user}, threshold=0, rerank=True)["results"]
    check_eq([h["id"] for h in hits], [h["id"] for h in plain], "fallback order")
    check_eq(
        {(h["reranker"], h["rerank_error"]) for h in hits}, {("none", "the reranker answered HTTP 503")}, "fallback"
    )


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "full"
    run({"wrong-key": wrong_key, "infer": infer, "rerank": rerank}.get(mode, scenario), f"{NAME} {mode}")
