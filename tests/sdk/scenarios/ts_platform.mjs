// Platform scenario for the TypeScript SDK 3.x (npm mem0ai 3.3.1): everything around the memories.
//
// Run like ts_v3.mjs (a copy next to a node_modules holding the SDK), with an org-scoped key of an org OWNER,
// against a memserver whose LLM is the tests' scripted fake (tests/fakes/platform_llm.py).
// What mem0ai 3.3.1 sends (read from dist/index.mjs); responses are camelCased by the SDK:
//   getProject    GET /api/v1/orgs/organizations/{org}/projects/{project}/?fields=...   (ids from ping)
//   updateProject PATCH same path, snake_cased body
//   users         GET /v1/entities/
//   feedback      POST /v1/feedback/ {memory_id, feedback, feedback_reason}
//   createMemoryExport POST /v1/exports/ {schema, filters, export_instructions?}; getMemoryExport POST /v1/exports/get/
//   profile settings GET/POST /v2/profiles/settings/; generateProfile/sampleProfiles POST /v2/profiles/jobs/
//   (Idempotency-Key), getProfileJob GET /v2/profiles/jobs/{id}/, getProfile GET /v2/entities/user/{id}/profile/
//   Dream synthesis has no SDK method: the Platform's dream config and a run over fetch, then getAll / search.
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

const NAME = "ts-platform mem0ai 3.x";

async function waitFor(fn, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  fail(`timed out waiting for ${what}`, last);
}

const SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", description: "Name" },
    facts: { type: "array", items: { type: "string" }, description: "Facts" },
  },
  required: ["name", "facts"],
};
const PROFILE_SCHEMA = {
  type: "object",
  properties: { interests: { type: "array", items: { type: "string" }, description: "Interests" } },
};

async function scenario() {
  const { url, key } = env();
  const sfx = randomUUID().slice(0, 10);
  const alice = `alice-${sfx}`;
  const client = new MemoryClient({ apiKey: key, host: url });

  step("getProject (fields are snake_cased, the whole object comes back)");
  const project = await client.getProject({ fields: ["customInstructions"] });
  check("customInstructions" in project, "getProject lacks customInstructions", project);
  check(project.customInstructions === null, "fresh project: customInstructions null", project);

  step("updateProject: the value a later getProject returns exactly");
  const updated = await client.updateProject({
    customInstructions: "Only food.",
    agentCustomInstructions: "Agent promises.",
    customCategories: [{ food: "What the user eats" }],
    memoryDepth: "deep",
    usecaseSetting: "support",
    multilingual: true,
    decay: false,
  });
  checkEq(updated.message, "Project updated successfully", "updateProject message");
  checkEq(
    updated.notes.map((n) => n.setting),
    ["memory_depth", "usecase_setting", "multilingual"],
    "updateProject notes (inert settings; multilingual on the local English embedder)",
  );
  const got = await client.getProject({ fields: ["custom_instructions"] });
  checkEq(got.customInstructions, "Only food.", "customInstructions");
  checkEq(got.agentCustomInstructions, "Agent promises.", "agentCustomInstructions");
  checkEq(got.memoryDepth, "deep", "memoryDepth");
  checkEq(got.multilingual, true, "multilingual");
  await client.updateProject({ customInstructions: "" });
  checkEq((await client.getProject({})).customInstructions, "", "cleared customInstructions");

  step("add, users(), feedback");
  const added = await client.add(
    [
      { role: "user", content: "Alice drinks green tea." },
      { role: "user", content: "Alice hikes in the Alps." },
    ],
    { userId: alice, infer: false },
  );
  const memId = added.results[0].id;

  step("add with parameters memserver accepts without effect: noted on the add's event");
  const noted = await client.add("Alice keeps a paper diary.", {
    userId: alice,
    infer: false,
    structuredDataSchema: { type: "object" },
    promptProfileId: "pp_1",
  });
  const eventResp = await fetch(`${url}/v1/event/${noted.eventId}/`, { headers: { Authorization: `Token ${key}` } });
  const event = await eventResp.json();
  checkEq(
    event.metadata.notes.map((n) => n.split(" ")[0]),
    ["prompt_profile_id", "structured_data_schema"],
    "the add's event notes",
  );
  await client.delete(noted.results[0].id);
  const users = await client.users();
  check(typeof users.count === "number", "users().count is a number", users);
  check(users.results.some((u) => u.name === alice && u.type === "user"), "users() lists alice", users);
  const fb = await client.feedback({ memoryId: memId, feedback: "NEGATIVE", feedbackReason: "outdated" });
  checkEq(fb.message, "Feedback recorded", "feedback message");
  checkEq(fb.feedback, "NEGATIVE", "feedback value");
  await expectReject(MemoryNotFoundError, () => client.feedback({ memoryId: randomUUID(), feedback: "POSITIVE" }),
    "feedback on an unknown memory");

  step("createMemoryExport / getMemoryExport by id and by filters");
  const exp = await client.createMemoryExport({ schema: SCHEMA, filters: { user_id: alice } });
  checkKeys(exp, ["message", "id"], "createMemoryExport");
  const data = await client.getMemoryExport({ memoryExportId: exp.id });
  checkEq(data.facts, ["Alice drinks green tea.", "Alice hikes in the Alps."], "export facts");
  const byFilter = await client.getMemoryExport({ filters: { user_id: alice } });
  checkEq(byFilter.name, "Alice drinks green tea.", "export by filters");

  step("profiles on memserver's default schema: updateProfileSettings({ enabled: true }), generateProfile");
  const byDefault = await client.updateProfileSettings({ enabled: true });
  checkEq(byDefault.entities.user.schemaSource, "default", "the default user schema applies");
  check("interests" in byDefault.entities.user.schema.properties, "the default schema is shown", byDefault);
  await client.generateProfile({ entityId: alice });
  const first = await waitFor(async () => {
    const p = await client.getProfile({ entityId: alice });
    return p.status === "succeeded" ? p : null;
  }, "the profile on the default schema");
  checkEq(first.profile.interests, ["Alice drinks green tea.", "Alice hikes in the Alps."], "default-schema interests");
  checkEq(first.error, null, "a succeeded profile has no error");

  step("profile settings, generateProfile with an Idempotency-Key, getProfileJob, getProfile");
  const settings = await client.updateProfileSettings({ enabled: true, schema: PROFILE_SCHEMA });
  checkEq(settings.enabled, true, "profiles enabled");
  checkEq(settings.entities.user.schema, PROFILE_SCHEMA, "schema kept verbatim");
  await expectReject(ValidationError,
    () => client.updateProfileSettings({ schema: { type: "object", properties: { x: { type: "string" } } } }),
    "a property without a description");
  const idem = `idem-${sfx}`;
  const job = await client.generateProfile({ entityId: alice, idempotencyKey: idem });
  check(job.jobId && job.statusUrl, "generateProfile: jobId and statusUrl", job);
  const again = await client.generateProfile({ entityId: alice, idempotencyKey: idem });
  checkEq([again.jobId, again.replayed], [job.jobId, true], "the same key gives the same job");
  const status = await waitFor(async () => {
    const j = (await client.getProfileJob(job.statusUrl)).job;
    return j.status === "SUCCEEDED" ? j : null;
  }, "the profile job");
  checkEq(status.succeeded, 1, "job succeeded");
  const profile = await client.getProfile({ entityId: alice });
  checkEq(profile.status, "succeeded", "profile status");
  checkEq(profile.profile.interests, ["Alice drinks green tea.", "Alice hikes in the Alps."], "profile interests");
  await expectReject(MemoryNotFoundError, () => client.getProfile({ entityId: `nobody-${sfx}` }), "unknown user");
  const sample = await client.sampleProfiles({ limit: 2 });
  checkEq(sample.entityIds, [alice], "sampled users");

  step("a failed generation: getProfile().error says why");
  await client.updateProfileSettings({ customInstructions: "UNREADABLE" }); // the scripted LLM answers no JSON
  await client.generateProfile({ entityId: alice });
  const failed = await waitFor(async () => {
    const p = await client.getProfile({ entityId: alice });
    return p.status === "failed" ? p : null;
  }, "the failed profile");
  check(typeof failed.error === "string" && failed.error.length > 0, "getProfile().error is the reason", failed);

  await dream(client, url, key, sfx);
}

async function dream(client, url, key, sfx) {
  step("Dream: reflection_enabled on the project's dream config (ids from the client's ping)");
  const base = `${url}/api/v1/orgs/organizations/${client.organizationId}/projects/${client.projectId}/dream`;
  const headers = { Authorization: `Token ${key}`, "Content-Type": "application/json" };
  const call = async (method, path, body) => {
    const r = await fetch(path.startsWith("http") ? path : `${url}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  const config = await call("PATCH", `${base}/config/`, { reflection_enabled: true });
  checkEq([config.status, config.body.reflection_enabled], [200, true], "dream config PATCH");

  step("Dream: 20 memories of one user, a synthesis run, its event");
  const user = `dreamer-${sfx}`;
  const added = await client.add(
    Array.from({ length: 20 }, (_, i) => ({ role: "user", content: `Had coffee at the station cafe on day ${i}.` })),
    { userId: user, infer: false },
  );
  const sources = added.results.map((m) => m.id).sort();
  const queued = await call("POST", `${base}/runs/`, { user_id: user });
  checkEq(queued.status, 202, "POST dream/runs/ status");
  const event = await waitFor(async () => {
    const e = (await call("GET", `/v1/event/${queued.body.event_id}/`)).body;
    return e.status === "SUCCEEDED" || e.status === "FAILED" ? e : null;
  }, "the synthesis run", 30000);
  checkEq([event.event_type, event.status], ["DREAM", "SUCCEEDED"], "the run's event");

  step("Dream: getAll shows the pattern (synthesized, linked to its sources), search finds it");
  const page = await client.getAll({ filters: { user_id: user } });
  const patterns = page.results.filter((m) => m.synthesized === true);
  checkEq(patterns.map((m) => m.memory), ["User keeps coming back to coffee (20 memories)."], "patterns");
  checkEq([...patterns[0].provenance.synthesis.sources].sort(), sources, "the pattern's sources");
  check(page.results.filter((m) => m.id !== patterns[0].id).every((m) => m.synthesized === false),
    "the sources are not synthesized", page.results);
  const hits = await client.search("how often does the user have coffee?", { filters: { user_id: user }, topK: 30 });
  check(hits.results.some((h) => h.id === patterns[0].id && h.synthesized === true), "search finds the pattern", hits);
}

await run(NAME, () => scenario());
