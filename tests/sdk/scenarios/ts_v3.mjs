// Scenario for the TypeScript SDK 3.x (npm mem0ai 3.3.1, MemoryClient, /v3 endpoints).
//
// Node resolves the bare "mem0ai" import from this file's directory (ESM ignores NODE_PATH), so run a
// copy of this file placed next to a node_modules that holds the SDK, e.g. (what the pytest does):
//   mkdir /tmp/x && cp ts_v3.mjs /tmp/x/ && ln -s <repo>/.cache/sdk/node-mem0ai-3.3.1/node_modules /tmp/x/
//   MEMSERVER_URL=... MEMSERVER_KEY=... MEM0_TELEMETRY=false node /tmp/x/ts_v3.mjs [wrong-key]
//
// What mem0ai 3.3.1 sends (read from dist/index.mjs). Every request carries
// `Authorization: Token <key>`, `Content-Type: application/json` (GET/DELETE too) and `Mem0-User-ID`
// (may be empty). Request bodies are camelCase -> snake_case converted (not inside `metadata`; `filters`
// is sent verbatim); every JSON response is snake_case -> camelCase converted (not inside `metadata`).
//   constructor  GET /v1/ping/ in the background; needs {"status":"ok"}; a failure is only logged.
//   ping()       GET /v1/ping/ -> throws unless status == "ok" (401 -> AuthenticationError).
//   add          POST /v3/memories/add/      {messages, user_id|agent_id|run_id|filters, metadata, infer}
//   get          GET /v1/memories/{id}/
//   getAll       POST /v3/memories/[?page=&page_size=]   {filters}
//   search       POST /v3/memories/search/   {query, output_format:"v1.1", filters, top_k, threshold, reference_date}
//   update       PUT /v1/memories/{id}/      {text?, metadata?}
//   history      GET /v1/memories/{id}/history/
//   delete       DELETE /v1/memories/{id}/
//   deleteAll    DELETE /v1/memories/?user_id=...  ({filters} outside its type: filters=[object Object] -> 400)
//   users        GET /v1/entities/[?page=&page_size=]
//   deleteUsers  DELETE /v2/entities/user/{name}/
//   batchUpdate  PUT /v1/batch/    {memories:[{memory_id, text}]}   (metadata is dropped by the SDK)
//   batchDelete  DELETE /v1/batch/ {memories:[{memory_id}]}
import { randomUUID } from "node:crypto";
import {
  AuthenticationError,
  MemoryClient,
  MemoryError,
  MemoryNotFoundError,
  ValidationError,
} from "mem0ai";
import {
  check,
  checkDate,
  checkEq,
  checkKeys,
  checkUuid,
  env,
  expectReject,
  fail,
  run,
  show,
  step,
} from "./_common.mjs";

const NAME = "ts-v3 mem0ai 3.x";

function texts(items) {
  return items.map((m) => m.memory).sort();
}

function ids(items) {
  return items.map((m) => m.id);
}

function checkScores(results, what, threshold) {
  let previous = null;
  for (const item of results) {
    const s = item.score;
    check(typeof s === "number" && s > 0 && s <= 1, `${what}: score not in (0, 1]`, item);
    if (threshold !== undefined) check(s >= threshold, `${what}: score below threshold ${threshold}`, item);
    if (previous !== null) check(s <= previous + 1e-9, `${what}: not sorted by descending score`, results);
    previous = s;
  }
}

const T_FOOD = "My favourite food is spicy Thai green curry.";
const T_HIKE = "I go hiking in the Swiss Alps every summer.";
const T_ASSIST = "I will remind you about your dentist appointment on Friday.";
const T_UA = "Alice wants the travel agent to always book aisle seats on flights.";
const T_AGENT = "The support agent must answer in formal British English.";
const T_RUN = "During this session the user is planning a trip to Lisbon in May.";
const T_BOB1 = "Bob plays the cello in a community orchestra.";
const T_BOB2 = "Bob is allergic to peanuts.";
const T_FOOD_NEW = "My favourite food is Neapolitan pizza with buffalo mozzarella.";
const T_UA_NEW = "Alice wants the travel agent to always book window seats on flights.";


// A v3 infer=false add reply, camelCased by the SDK: {message, status, eventId, results:[{id, data, event}]}
function added(resp, expectedTexts, what) {
  checkKeys(resp, ["status", "eventId", "results"], what);
  checkEq(resp.status, "SUCCEEDED", `${what}: status`);
  checkUuid(resp.eventId, `${what}: eventId`);
  check(typeof resp.message === "string", `${what}: message should be a string`, resp);
  check(Array.isArray(resp.results), `${what}: results should be an array`, resp);
  checkEq(resp.results.map((r) => r.data && r.data.memory).sort(), [...expectedTexts].sort(),
    `${what}: results[].data.memory`);
  const byText = {};
  for (const r of resp.results) {
    checkEq(r.event, "ADD", `${what}: results[].event`);
    byText[r.data.memory] = checkUuid(r.id, `${what}: results[].id`);
  }
  return expectedTexts.map((t) => byText[t]);
}

async function listAll(client, filters, what, extra = {}) {
  const resp = await client.getAll({ filters, ...extra });
  checkKeys(resp, ["count", "next", "previous", "results"], what);
  check(Array.isArray(resp.results), `${what}: results should be an array`, resp);
  check(typeof resp.count === "number", `${what}: count should be a number`, resp);
  return resp;
}

async function scenario() {
  const { url, key } = env();
  const sfx = randomUUID().slice(0, 10);
  const alice = `alice-${sfx}`;
  const bob = `bob-${sfx}`;
  const agent = `agent-${sfx}`;
  const runId = `run-${sfx}`;

  step("construct MemoryClient and ping()");
  const client = new MemoryClient({ apiKey: key, host: url });
  try {
    await client.ping();
  } catch (err) {
    fail(`ping() failed; GET /v1/ping/ must answer 200 {"status":"ok",...}: ${err && err.name}: ${err && err.message}`);
  }
  check(client.organizationId && client.projectId, "ping did not provide org_id/project_id",
    { organizationId: client.organizationId, projectId: client.projectId });

  step("add: user scope, infer=false, metadata (userId option)");
  let resp = await client.add([{ role: "user", content: T_FOOD }],
    { userId: alice, infer: false, metadata: { topic: "food", priority: 1, camelKey: "kept" } });
  const [foodId] = added(resp, [T_FOOD], "add user");

  step("add: several messages (system skipped, user+assistant stored)");
  resp = await client.add(
    [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: T_HIKE },
      { role: "assistant", content: T_ASSIST },
    ],
    { userId: alice, infer: false, metadata: { topic: "misc" } },
  );
  const [hikeId, assistId] = added(resp, [T_HIKE, T_ASSIST], "add conversation");

  step("add: user+agent scope passed in filters");
  resp = await client.add([{ role: "user", content: T_UA }],
    { filters: { user_id: alice, agent_id: agent }, infer: false, metadata: { topic: "flights" } });
  const [uaId] = added(resp, [T_UA], "add user+agent via filters");

  step("add: agent-only scope (agentId option)");
  resp = await client.add([{ role: "assistant", content: T_AGENT }], { agentId: agent, infer: false });
  const [agentMemId] = added(resp, [T_AGENT], "add agent only");

  step("add: user+run scope with metadata");
  resp = await client.add([{ role: "user", content: T_RUN }],
    { userId: alice, runId, infer: false, metadata: { topic: "travel" } });
  const [runMemId] = added(resp, [T_RUN], "add user+run");

  step("add: second user");
  resp = await client.add(
    [{ role: "user", content: T_BOB1 }, { role: "user", content: T_BOB2 }],
    { userId: bob, infer: false },
  );
  const [bob1Id] = added(resp, [T_BOB1, T_BOB2], "add bob");

  step("get by id (camelCased keys)");
  let mem = await client.get(foodId);
  checkKeys(mem, ["id", "memory", "userId", "metadata", "categories", "createdAt", "updatedAt"], "get(food)");
  checkEq([mem.id, mem.memory, mem.userId], [foodId, T_FOOD, alice], "get(food) id/memory/userId");
  checkEq(mem.metadata, { topic: "food", priority: 1, camelKey: "kept" }, "get(food).metadata (verbatim keys)");
  checkDate(mem.createdAt, "get(food).createdAt");
  checkDate(mem.updatedAt, "get(food).updatedAt");
  mem = await client.get(uaId);
  checkEq([mem.userId, mem.agentId], [alice, agent], "get(user+agent) [userId, agentId]");
  mem = await client.get(agentMemId);
  checkEq([mem.userId ?? null, mem.agentId], [null, agent], "get(agent only) [userId, agentId]");
  mem = await client.get(runMemId);
  checkEq([mem.runId, mem.sessionId], [runId, runId], "get(run) [runId, sessionId]");
  await expectReject(ValidationError, () => client.get("not-a-uuid"), "get('not-a-uuid') (400)");
  await expectReject(MemoryNotFoundError, () => client.get("00000000-0000-4000-8000-000000000000"),
    "get(unknown uuid) (404)");

  step("getAll: one user");
  const aliceTexts = [T_FOOD, T_HIKE, T_ASSIST, T_UA, T_RUN].sort();
  resp = await listAll(client, { user_id: alice }, "getAll(user_id)");
  checkEq(texts(resp.results), aliceTexts, "getAll(user_id) memories");
  checkEq([resp.count, resp.next, resp.previous], [5, null, null], "getAll(user_id) [count, next, previous]");

  step("getAll: AND / OR / wildcard / metadata filters");
  resp = await listAll(client, { AND: [{ user_id: alice }, { agent_id: agent }] }, "getAll(AND)");
  checkEq(ids(resp.results), [uaId], "getAll(AND user+agent) ids");
  resp = await listAll(client, { OR: [{ agent_id: agent }, { user_id: bob }] }, "getAll(OR)");
  checkEq(texts(resp.results), [T_UA, T_AGENT, T_BOB1, T_BOB2].sort(), "getAll(OR) memories");
  resp = await listAll(client, { AND: [{ user_id: alice }, { run_id: "*" }] }, "getAll(run_id=*)");
  checkEq(ids(resp.results), [runMemId], "getAll(user, run_id='*') ids");
  resp = await listAll(client, { AND: [{ user_id: alice }, { metadata: { topic: "food" } }] }, "getAll(meta)");
  checkEq(ids(resp.results), [foodId], "getAll(user, metadata.topic=food) ids");

  step("getAll: pagination page/pageSize");
  const seen = [];
  const pages = [];
  for (const page of [1, 2, 3]) {
    resp = await listAll(client, { user_id: alice }, `getAll page ${page}`, { page, pageSize: 2 });
    checkEq(resp.count, 5, `page ${page} count`);
    pages.push(resp);
    seen.push(...ids(resp.results));
  }
  checkEq(pages.map((p) => p.results.length), [2, 2, 1], "page lengths for pageSize=2");
  check(pages[0].previous === null && typeof pages[0].next === "string", "page 1: previous=null, next=url",
    pages[0]);
  check(typeof pages[1].previous === "string" && typeof pages[1].next === "string",
    "page 2: previous and next are urls", pages[1]);
  check(typeof pages[2].previous === "string" && pages[2].next === null, "page 3: previous=url, next=null",
    pages[2]);
  checkEq([...seen].sort(), [foodId, hikeId, assistId, uaId, runMemId].sort(), "ids across pages");

  step("users() lists the entities");
  resp = await client.users();
  checkKeys(resp, ["count", "results"], "users()");
  check(typeof resp.count === "number", "users().count should be a number", resp);
  const names = new Set(resp.results.map((e) => `${e.type}:${e.name}`));
  for (const e of [`user:${alice}`, `user:${bob}`, `agent:${agent}`, `run:${runId}`]) {
    check(names.has(e), `users() lacks ${e}`, resp);
  }
  check(resp.results.every((e) => typeof e.id === "string"), "entity ids should be strings", resp);

  step("search: query + filters + topK + threshold");
  resp = await client.search("What is my favourite food?", { filters: { user_id: alice }, topK: 3, threshold: 0.1 });
  checkKeys(resp, ["results"], "search");
  check(resp.results.length > 0 && resp.results.length <= 3, "search: nothing found or topK ignored", resp);
  checkEq([resp.results[0].id, resp.results[0].memory], [foodId, T_FOOD], "search(food) first hit");
  checkScores(resp.results, "search(food)", 0.1);
  resp = await client.search("Which city is the user planning to visit?", { filters: { run_id: runId }, topK: 5 });
  checkEq(ids(resp.results), [runMemId], "search(run filter) ids");
  checkEq(resp.results[0].runId, runId, "search result runId");
  resp = await client.search("In which language and tone must the support agent answer?",
    { filters: { agent_id: agent }, topK: 1 });
  checkEq(ids(resp.results), [agentMemId], "search(agent, topK=1) ids");

  step("update text and metadata, then re-read");
  resp = await client.update(foodId, { text: T_FOOD_NEW, metadata: { topic: "food", updated: true } });
  check(resp && typeof resp === "object", "update should return a JSON object", resp);
  mem = await client.get(foodId);
  checkEq([mem.memory, mem.metadata], [T_FOOD_NEW, { topic: "food", updated: true }], "memory after update");
  await client.update(hikeId, { metadata: { topic: "outdoors" } });
  mem = await client.get(hikeId);
  checkEq([mem.memory, mem.metadata], [T_HIKE, { topic: "outdoors" }], "metadata-only update");
  resp = await client.search("pizza with mozzarella", { filters: { user_id: alice }, topK: 1 });
  checkEq(ids(resp.results), [foodId], "search finds the updated text");

  step("history: ADD then UPDATE");
  const hist = await client.history(foodId);
  check(Array.isArray(hist), "history should be an array", hist);
  const byEvent = Object.fromEntries(hist.map((h) => [h.event, h]));
  check(byEvent.ADD && byEvent.UPDATE, "history lacks ADD or UPDATE", hist);
  for (const h of hist) {
    checkKeys(h, ["id", "memoryId", "oldMemory", "newMemory", "event", "createdAt"], "history entry");
    checkEq(h.memoryId, foodId, "history entry memoryId");
    checkDate(h.createdAt, "history entry createdAt");
  }
  checkEq([byEvent.ADD.oldMemory, byEvent.ADD.newMemory], [null, T_FOOD], "ADD [old, new]");
  checkEq([byEvent.UPDATE.oldMemory, byEvent.UPDATE.newMemory], [T_FOOD, T_FOOD_NEW], "UPDATE [old, new]");

  step("delete one memory, then get fails");
  resp = await client.delete(assistId);
  check(typeof resp.message === "string", "delete: no message", resp);
  await expectReject(MemoryNotFoundError, () => client.get(assistId), "get(deleted)");
  resp = await listAll(client, { user_id: alice }, "getAll after delete");
  check(!ids(resp.results).includes(assistId), "deleted memory still listed", resp);
  checkEq(resp.count, 4, "count after delete");

  step("batchUpdate and batchDelete");
  resp = await client.batchUpdate([{ memoryId: uaId, text: T_UA_NEW }]);
  check(typeof resp.message === "string", "batchUpdate: no message", resp);
  checkEq((await client.get(uaId)).memory, T_UA_NEW, "text after batchUpdate");
  resp = await client.batchDelete([uaId, agentMemId]);
  check(typeof resp.message === "string", "batchDelete: no message", resp);
  for (const id of [uaId, agentMemId]) {
    await expectReject(MemoryNotFoundError, () => client.get(id), "get(batch-deleted)");
  }

  step("deleteAll for one user");
  resp = await client.deleteAll({ userId: bob });
  checkEq(resp, { message: "Memories deleted successfully!", deletedCount: 2 }, "deleteAll answer");
  resp = await listAll(client, { user_id: bob }, "getAll(bob) after deleteAll");
  checkEq([resp.count, resp.results], [0, []], "bob's memories after deleteAll");
  await expectReject(MemoryNotFoundError, () => client.get(bob1Id), "get(bob memory) after deleteAll");
  resp = await listAll(client, { user_id: alice }, "getAll(alice) after bob's deleteAll");
  checkEq(texts(resp.results), [T_FOOD_NEW, T_HIKE, T_RUN].sort(), "alice untouched by bob's deleteAll");

  step("deleteAll({ filters }), outside its type: 400 saying to pass the ids, nothing deleted");
  const refused = await expectReject(
    ValidationError,
    () => client.deleteAll({ filters: { userId: alice } }),
    "deleteAll({ filters: {...} }) (URLSearchParams sends '[object Object]')",
  );
  check(String(refused.message).includes("deleteAll({ userId: 'alice' })"), "the 400 names the fix", refused.message);
  resp = await listAll(client, { user_id: alice }, "getAll(alice) after the refused deleteAll");
  checkEq(resp.count, 3, "alice's memories after the refused deleteAll");

  step("deleteUsers for one user");
  resp = await client.deleteUsers({ userId: alice });
  checkEq(resp, { message: "Entity deleted successfully." }, "deleteUsers return");
  resp = await listAll(client, { user_id: alice }, "getAll(alice) after deleteUsers");
  checkEq(resp.count, 0, "alice's memories after deleteUsers");
  await expectReject(MemoryNotFoundError, () => client.get(foodId), "get(alice memory) after deleteUsers");
  const after = new Set((await client.users()).results.map((e) => `${e.type}:${e.name}`));
  check(!after.has(`user:${alice}`), "users() still lists the deleted user", [...after]);

  step("search with referenceDate: the dinner of the time asked about ranks first");
  const maya = `maya-${sfx}`;
  const told = { Tokyo: 1741809600, Paris: 1742547600, Lisbon: 1718049600 }; // 03-12, 03-21 2025; 06-10 2024
  const dinners = {};
  for (const [city, timestamp] of Object.entries(told)) {
    const text = `I had dinner with Maya in ${city} yesterday.`;
    [dinners[city]] = added(await client.add([{ role: "user", content: text }], { userId: maya, infer: false, timestamp }),
      [text], `add ${city}`);
  }
  resp = await client.search("Which city did I have dinner with Maya in last week?",
    { filters: { user_id: maya }, referenceDate: "2025-03-21T00:00:00Z" });
  checkEq(resp.results[0].id, dinners.Tokyo, "search(last week, referenceDate) first");
  check(typeof (resp.results[0].scoreReasons || {}).temporal === "string", "no scoreReasons", resp.results[0]);
  resp = await client.search("Which city did I have dinner with Maya in last year?",
    { filters: { user_id: maya }, referenceDate: 1742558400 });
  checkEq(resp.results[0].id, dinners.Lisbon, "search(last year, referenceDate number) first");
  const tokyo = await client.get(dinners.Tokyo);
  checkEq(((tokyo.eventPeriod || {}).start || "").slice(0, 10), "2025-03-11", "eventPeriod of 'yesterday'");
}

async function wrongKey() {
  const { url } = env();
  const bad = `m0-wrong-${randomUUID()}`;
  step("construct with a wrong key (construction only logs), ping() rejects with AuthenticationError");
  const client = new MemoryClient({ apiKey: bad, host: url });
  const err = await expectReject(AuthenticationError, () => client.ping(), "ping() with a wrong key");
  let body;
  try {
    body = JSON.parse(err.message);
  } catch {
    fail("the 401 body should be JSON", err.message);
  }
  check(body && typeof body.detail === "string", "the 401 body should carry a 'detail' string", body);

  step("the first memory call with a wrong key rejects with AuthenticationError");
  await expectReject(AuthenticationError, () => client.getAll({ filters: { user_id: "nobody" } }), "getAll");
  await expectReject(AuthenticationError,
    () => client.add([{ role: "user", content: "hello" }], { userId: "nobody", infer: false }), "add");
  await expectReject(MemoryError, () => client.search("hello", { filters: { user_id: "nobody" } }), "search");
}

// infer=true (the default): the add answers {eventId, status: "PENDING"}; the event, polled, lists the
// memory the (scripted, echo) model extracted, which is then listed and searchable.
const INFER_TEXT = "I drink green tea every morning.";

async function pollEvent(url, key, eventId) {
  const deadline = Date.now() + 30000;
  for (;;) {
    const r = await fetch(`${url}/v1/event/${eventId}/`, { headers: { Authorization: `Token ${key}` } });
    checkEq(r.status, 200, "GET /v1/event/{id}/ status");
    const event = await r.json();
    if (event.status === "SUCCEEDED" || event.status === "FAILED") return event;
    check(Date.now() < deadline, `event ${eventId} did not finish`, event);
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function infer() {
  const { url, key } = env();
  const user = `tea-${randomUUID().slice(0, 10)}`;
  const client = new MemoryClient({ apiKey: key, host: url });
  step("add without infer (default true) -> {eventId, status: PENDING}");
  const resp = await client.add([{ role: "user", content: INFER_TEXT }], { userId: user });
  checkEq(resp.status, "PENDING", "add status");
  const eventId = checkUuid(resp.eventId, "add eventId");
  step("poll the event until SUCCEEDED");
  const event = await pollEvent(url, key, eventId);
  checkEq(event.status, "SUCCEEDED", "event status");
  checkEq(event.results.map((r) => [r.event, r.data.memory]), [["ADD", INFER_TEXT]], "memory events");
  const memoryId = checkUuid(event.results[0].id, "memory id");
  step("the extracted memory is listed and searchable");
  const page = await client.getAll({ filters: { user_id: user } });
  checkEq(ids(page.results), [memoryId], "getAll after the inferred add");
  const hits = await client.search("what does the user drink in the morning?", { filters: { user_id: user } });
  check(hits.results.length > 0 && hits.results[0].id === memoryId, "search should find the inferred memory", hits);
}

// search(q, {rerank: true}) against a memserver whose reranker is the fake /rerank server, scripted (tests/sdk)
// to put the memory about espresso first and to answer 503 to a query that says "outage". Responses are
// camelCased: `reranker`, `rerankError`, `scoreBreakdown.rerank`.
const R_PIZZA = "My favourite food is Neapolitan pizza.";
const R_PASTA = "I like fresh pasta with basil for dinner.";
const R_ESPRESSO = "I drink an espresso after lunch.";

async function rerank() {
  const { url, key } = env();
  const user = `rr-${randomUUID().slice(0, 10)}`;
  const client = new MemoryClient({ apiKey: key, host: url });
  for (const text of [R_PIZZA, R_PASTA, R_ESPRESSO]) {
    await client.add([{ role: "user", content: text }], { userId: user, infer: false });
  }
  const query = "What food does the user like?";
  const filters = { user_id: user };
  step("rerank: false -> the hybrid order, no rerank fields");
  let plain = (await client.search(query, { filters, threshold: 0 })).results;
  checkEq(texts(plain), [R_ESPRESSO, R_PASTA, R_PIZZA].sort(), "search texts");
  check(plain[0].memory !== R_ESPRESSO, "the hybrid order should not already put espresso first", plain);
  check(plain.every((h) => !("reranker" in h)), "rerank: false hits carry no reranker", plain);
  step("rerank: true -> the reranker's relevance order");
  let hits = (await client.search(query, { filters, threshold: 0, rerank: true })).results;
  checkEq(hits[0].memory, R_ESPRESSO, "search(rerank: true) first");
  checkEq([...new Set(hits.map((h) => h.reranker))], ["cohere"], "reranker of every hit");
  checkEq([...new Set(hits.map((h) => h.rerankError))], [null], "rerankError of every hit");
  const relevance = hits.map((h) => h.scoreBreakdown.rerank);
  checkEq(relevance, [...relevance].sort((a, b) => b - a), "hits ordered by scoreBreakdown.rerank");
  check(hits.every((h) => h.score > 0 && h.score <= 1), "scores in (0, 1]", hits);
  step("a failing reranker: still a result, in hybrid order, with the reason");
  const outage = `${query} outage`;
  plain = (await client.search(outage, { filters, threshold: 0 })).results;
  hits = (await client.search(outage, { filters, threshold: 0, rerank: true })).results;
  checkEq(ids(hits), ids(plain), "fallback order");
  checkEq([...new Set(hits.map((h) => `${h.reranker}: ${h.rerankError}`))],
    ["none: the reranker answered HTTP 503"], "fallback label and reason");
}

const MODES = { "wrong-key": wrongKey, infer, rerank };
await run(NAME, (mode) => (MODES[mode] || scenario)());
