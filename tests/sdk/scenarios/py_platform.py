"""Platform scenario for the current Python SDK (mem0ai 2.2.1): everything around the memories.

Needs an org-scoped key of an org OWNER, against a memserver with an LLM (the tests' scripted fake,
tests/fakes/platform_llm.py). What it drives (read from mem0/client/main.py and project.py):
  project.get/update/create/delete, project members (get/add/update/remove), a client for another project
  (MemoryClient(org_id=..., project_id=...)), deprecated get_project/update_project, feedback, users,
  create_memory_export/get_memory_export, get_summary, profile settings, generate_profile (Idempotency-Key),
  get_profile_job, get_profile, sample_profiles; Dream synthesis (no SDK method: the Platform's dream config
  and a run asked for through the client's own HTTP client, then get_all and search show the pattern).
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import uuid

from _common import check, check_eq, check_keys, env, expect_raises, poll_event, run, step, suffix, wait_for
from mem0 import MemoryClient
from mem0.client.project import Project
from mem0.exceptions import AuthenticationError, MemoryNotFoundError, ValidationError

NAME = f"py-platform mem0ai {importlib.metadata.version('mem0ai')}"
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name"},
        "facts": {"type": "array", "items": {"type": "string"}, "description": "Facts"},
    },
    "required": ["name", "facts"],
}
PROFILE_SCHEMA = {
    "type": "object",
    "properties": {"interests": {"type": "array", "items": {"type": "string"}, "description": "Interests"}},
}


def scenario() -> None:
    url, key = env()
    sfx = suffix()
    alice = f"alice-{sfx}"

    step("construct; project.get with fields (path + query org_id/project_id)")
    client = MemoryClient(api_key=key, host=url)
    project = client.project.get(fields=["custom_instructions", "custom_categories"])
    check_eq(project["project_id"], client.project_id, "project.get project_id")
    check(project["custom_instructions"] is None and project["decay"] is False, "fresh project settings", project)

    step("project.update: every setting 2.2.1 sends (org_id/project_id in the body)")
    resp = client.project.update(
        custom_instructions="Only food.",
        custom_categories=[{"food": "What the user eats"}],
        multilingual=True,
        decay=True,
        agent_custom_instructions="Agent promises.",
    )
    check_eq(resp.get("message"), "Project updated successfully", "project.update message")
    got = client.project.get()
    for k, v in {
        "custom_instructions": "Only food.",
        "custom_categories": [{"food": "What the user eats"}],
        "multilingual": True,
        "decay": True,
        "agent_custom_instructions": "Agent promises.",
    }.items():
        check_eq(got.get(k), v, f"project.get {k}")

    step("deprecated get_project / update_project (memory_depth, usecase_setting): kept, answered with notes")
    resp = client.update_project(custom_instructions="", memory_depth="deep", usecase_setting="support")
    check_eq(resp.get("message"), "Project updated successfully", "update_project message")
    check_eq([n["setting"] for n in resp.get("notes", [])], ["memory_depth", "usecase_setting"], "notes")
    check("no effect" in resp["notes"][0]["note"], "the note says it has no effect", resp)
    got = client.get_project(fields=["custom_instructions"])
    check_eq(got.get("custom_instructions"), "", "cleared custom_instructions")
    check_eq((got.get("memory_depth"), got.get("usecase_setting")), ("deep", "support"), "deprecated update")
    client.project.update(decay=False)

    step("project.create, then the SDK's Project manager for that project (org_id + project_id)")
    created = client.project.create(name=f"side-{sfx}", description="side project")
    check_keys(created, ["message", "project_id"], "project.create")
    side = Project(client=client.client, org_id=client.org_id, project_id=created["project_id"])
    check_eq(side.get()["name"], f"side-{sfx}", "the side project's name")

    step("members of the side project: add, list, change, remove")
    side.add_member(f"reader-{sfx}@example.com", "READER")
    members = {m["email"]: m["role"] for m in side.get_members()["members"]}
    check_eq(members.get(f"reader-{sfx}@example.com"), "READER", "added member")
    side.update_member(f"reader-{sfx}@example.com", "OWNER")
    members = {m["email"]: m["role"] for m in side.get_members()["members"]}
    check_eq(members.get(f"reader-{sfx}@example.com"), "OWNER", "changed role")
    side.remove_member(f"reader-{sfx}@example.com")
    check(f"reader-{sfx}@example.com" not in {m["email"] for m in side.get_members()["members"]}, "member removed")

    step("a project of an org the key does not belong to -> AuthenticationError (403)")
    stranger = Project(client=client.client, org_id=str(uuid.uuid4()), project_id=str(uuid.uuid4()))
    expect_raises(AuthenticationError, lambda: stranger.get(), "project.get of another org")

    step("project.delete of the side project")
    check_eq(side.delete().get("message"), "Project and related data deleted successfully.", "delete")

    step("project.update(multilingual=False): memories in English, said in the answer")
    resp = client.project.update(multilingual=False)
    check_eq([n["setting"] for n in resp.get("notes", [])], ["multilingual"], "multilingual note")
    check_eq(client.project.get()["multilingual"], False, "multilingual stored")
    client.project.update(multilingual=True)

    step("add with parameters memserver accepts without effect: noted on the add's event")
    resp = client.add(
        "Alice keeps a paper diary.",
        user_id=alice,
        infer=False,
        structured_data_schema={"type": "object"},
        prompt_profile_id="pp_1",
    )
    event = client.client.get(f"/v1/event/{resp['event_id']}/").json()
    notes = event["metadata"]["notes"]
    check_eq([n.split(" ", 1)[0] for n in notes], ["prompt_profile_id", "structured_data_schema"], "event notes")
    client.delete(resp["results"][0]["id"])

    step("add memories; users(); feedback (stored, null removes)")
    resp = client.add(
        [
            {"role": "user", "content": "Alice drinks green tea."},
            {"role": "user", "content": "Alice hikes in the Alps."},
        ],
        user_id=alice,
        infer=False,
    )
    mem_id = resp["results"][0]["id"]
    check(alice in {u["name"] for u in client.users()["results"]}, "users() lists alice")
    fb = client.feedback(mem_id, "positive", "accurate")
    check_eq((fb.get("message"), fb.get("feedback")), ("Feedback recorded", "POSITIVE"), "feedback")
    check_eq(client.feedback(mem_id, None, None).get("message"), "Feedback removed", "feedback removed")
    expect_raises(MemoryNotFoundError, lambda: client.feedback(str(uuid.uuid4()), "NEGATIVE"), "unknown memory")

    step("get_summary (body {})")
    summary = client.get_summary()
    check(isinstance(summary, list) and "Alice drinks green tea." in summary[0]["summary"], "summary", summary)
    summary = client.get_summary(filters={"user_id": alice})
    check_eq(summary[0]["memory_count"], 2, "summary memory_count")

    step("create_memory_export (schema as a JSON string) and get_memory_export by id and by filters")
    export = client.create_memory_export(json.dumps(SCHEMA), filters={"user_id": alice})
    check_keys(export, ["message", "id"], "create_memory_export")
    data = client.get_memory_export(memory_export_id=export["id"])
    check_eq(data.get("facts"), ["Alice drinks green tea.", "Alice hikes in the Alps."], "export facts")
    check_eq(client.get_memory_export(filters={"user_id": alice}).get("name"), "Alice drinks green tea.", "by filter")

    step("profiles on memserver's default schema: update_profile_settings(enabled=True), generate_profile")
    settings = client.update_profile_settings(enabled=True)
    check_eq(settings["entities"]["user"]["schema_source"], "default", "the default user schema applies")
    check("interests" in settings["entities"]["user"]["schema"]["properties"], "the default schema is shown")
    client.generate_profile(alice)
    first = wait_for(
        lambda: (p := client.get_profile(alice))["status"] == "succeeded" and p, "the profile on the default schema"
    )
    check_eq(first["profile"]["interests"], ["Alice drinks green tea.", "Alice hikes in the Alps."], "interests")
    check_eq(first["error"], None, "a succeeded profile has no error")

    step("profile settings")
    settings = client.update_profile_settings(enabled=True, schema=PROFILE_SCHEMA, custom_instructions=None)
    check_eq(settings["entities"]["user"]["schema"], PROFILE_SCHEMA, "stored schema")
    check_eq(client.get_profile_settings()["enabled"], True, "enabled")
    expect_raises(
        ValidationError,
        lambda: client.update_profile_settings(schema={"type": "object", "properties": {"x": {"type": "string"}}}),
        "a property without a description",
    )

    step("generate_profile with an Idempotency-Key: the same key gives the same job")
    job = client.generate_profile(alice, idempotency_key=f"key-{sfx}")
    check_keys(job, ["job_id", "status", "status_url"], "generate_profile")
    again = client.generate_profile(alice, idempotency_key=f"key-{sfx}")
    check_eq((again["job_id"], again["replayed"]), (job["job_id"], True), "replayed job")
    done = wait_for(
        lambda: (j := client.get_profile_job(job["status_url"])["job"])["status"] == "SUCCEEDED" and j,
        "the profile job",
    )
    check_eq(done["succeeded"], 1, "job succeeded count")
    check_eq(client.get_profile_job(job["job_id"])["job"]["id"], job["job_id"], "job by bare id")

    step("get_profile: succeeded, pruned to the schema")
    profile = client.get_profile(alice)
    check_eq(profile["status"], "succeeded", "profile status")
    check_eq(profile["profile"], {"interests": ["Alice drinks green tea.", "Alice hikes in the Alps."]}, "profile")
    expect_raises(MemoryNotFoundError, lambda: client.get_profile(f"nobody-{sfx}"), "unknown user")

    step("sample_profiles")
    sample = client.sample_profiles(limit=3)
    check_eq(sample.get("entity_ids"), [alice], "sampled users")

    step("a failed generation: get_profile()['error'] says why")
    client.update_profile_settings(custom_instructions="UNREADABLE")  # the scripted LLM answers no JSON
    client.generate_profile(alice)
    failed = wait_for(lambda: (p := client.get_profile(alice))["status"] == "failed" and p, "the failed profile")
    check(isinstance(failed["error"], str) and failed["error"], "get_profile()['error'] is the reason", failed)

    dream(client, sfx)


def dream(client: MemoryClient, sfx: str) -> None:
    """Dream synthesis: turned on where the Platform serves it, 20 memories of one user, a run, the pattern."""
    step("Dream: reflection_enabled on the project's dream config")
    http = client.client
    base = f"/api/v1/orgs/organizations/{client.org_id}/projects/{client.project_id}/dream"
    r = http.patch(f"{base}/config/", json={"reflection_enabled": True})
    check(r.status_code == 200 and r.json()["reflection_enabled"] is True, "dream config PATCH", r.text)
    check_eq(client.project.get()["dream"]["reflection_enabled"], True, "project.get shows Dream")

    step("Dream: 20 memories of one user, a synthesis run, its event")
    user = f"dreamer-{sfx}"
    texts = [f"Had coffee at the station cafe on day {i}." for i in range(20)]
    added = client.add([{"role": "user", "content": t} for t in texts], user_id=user, infer=False)
    sources = sorted(m["id"] for m in added["results"])
    r = http.post(f"{base}/runs/", json={"user_id": user})
    check_eq(r.status_code, 202, "POST dream/runs/ status")
    event = poll_event(http, r.json()["event_id"])
    check_eq((event["event_type"], event["status"]), ("DREAM", "SUCCEEDED"), "the run's event")

    step("Dream: get_all shows the pattern (synthesized, linked to its sources), latest_only and search too")
    page = client.get_all(filters={"user_id": user})
    patterns = [m for m in page["results"] if m["synthesized"]]
    check_eq([m["memory"] for m in patterns], ["User keeps coming back to coffee (20 memories)."], "patterns")
    check_eq(sorted(patterns[0]["provenance"]["synthesis"]["sources"]), sources, "the pattern's sources")
    check_eq({m["synthesized"] for m in page["results"] if m["id"] != patterns[0]["id"]}, {False}, "the sources")
    latest = client.get_all(filters={"user_id": user}, latest_only=True)
    check(patterns[0]["id"] in {m["id"] for m in latest["results"]}, "latest_only keeps the pattern", latest)
    hits = client.search("how often does the user have coffee?", filters={"user_id": user}, top_k=30)["results"]
    check(any(h["id"] == patterns[0]["id"] and h["synthesized"] for h in hits), "search finds the pattern", hits)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "full"
    run(scenario, f"{NAME} {mode}")
