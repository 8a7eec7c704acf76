"""Platform scenario for the older Python SDKs (mem0ai 1.0.11 and 0.1.118): what they call around the memories.

These generations take `org_id`/`project_id` in the constructor and send them with every call (query or
body), so a client built for another project acts on it when the key reaches it. Needs an org-scoped key of
an org OWNER against a memserver with the scripted LLM. Calls (read from mem0/client/main.py, project.py):
  project.get/update/create/delete and members, get_project/update_project (retrieval_criteria, enable_graph,
  version), feedback (the SDK raises TypeError after the request was sent: its telemetry call is broken;
  the server must still store it), create_memory_export/get_memory_export, get_summary.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import sys
import urllib.request
import uuid

from _common import check, check_eq, check_keys, env, expect_raises, run, step, suffix
from mem0 import MemoryClient

NAME = f"py-platform-old mem0ai {importlib.metadata.version('mem0ai')}"
SCHEMA = {
    "type": "object",
    "properties": {"facts": {"type": "array", "items": {"type": "string"}, "description": "Facts"}},
    "required": ["facts"],
}


def raw_get(url: str, key: str, path: str) -> dict:
    req = urllib.request.Request(url + path, headers={"Authorization": f"Token {key}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def texts(resp) -> list[str]:
    items = resp["results"] if isinstance(resp, dict) else resp
    return sorted(m["memory"] for m in items)


def scenario() -> None:
    url, key = env()
    sfx = suffix()
    alice = f"alice-{sfx}"

    step("construct; project.get / project.update (org_id, project_id sent along)")
    client = MemoryClient(api_key=key, host=url)
    check_eq(client.project.get(fields=["custom_instructions"])["custom_instructions"], None, "fresh project")
    resp = client.project.update(
        custom_instructions="Only food.",
        custom_categories=["food", "travel"],
        retrieval_criteria=[{"name": "joy", "description": "happy things", "weight": 3}],
        enable_graph=True,
    )
    check_eq([n["setting"] for n in resp.get("notes", [])], ["retrieval_criteria"], "project.update notes")
    got = client.project.get()
    check_eq(
        (got["custom_instructions"], got["custom_categories"], got["enable_graph"]),
        ("Only food.", ["food", "travel"], True),
        "project.update round trip",
    )
    check_eq(got["retrieval_criteria"][0]["weight"], 3, "retrieval_criteria")

    step("deprecated get_project / update_project (version): kept, answered with a note")
    resp = client.update_project(custom_instructions="", version="v2")
    check_eq(resp.get("message"), "Project updated successfully", "update_project message")
    check_eq([n["setting"] for n in resp.get("notes", [])], ["version"], "update_project notes")
    got = client.get_project(fields=["custom_instructions"])
    check_eq((got["custom_instructions"], got["version"]), ("", "v2"), "update_project round trip")

    step("project.create; a client for the new project acts on it (org_id/project_id on every call)")
    created = client.project.create(name=f"side-{sfx}")
    check_keys(created, ["message", "project_id"], "project.create")
    side = MemoryClient(api_key=key, host=url, org_id=client.org_id, project_id=created["project_id"])
    side.add(
        [{"role": "user", "content": "Side memory."}],
        user_id=alice,
        infer=False,
        async_mode=False,
        output_format="v1.1",
    )
    check_eq(texts(side.get_all(user_id=alice)), ["Side memory."], "the side project's memories")
    check_eq(texts(client.get_all(user_id=alice)), [], "the default project has none of them")
    side.project.add_member(f"r-{sfx}@example.com", "READER")
    side.project.update_member(f"r-{sfx}@example.com", "OWNER")
    roles = {m["email"]: m["role"] for m in side.project.get_members()["members"]}
    check_eq(roles.get(f"r-{sfx}@example.com"), "OWNER", "member role")
    side.project.remove_member(f"r-{sfx}@example.com")

    step("a client for a project of another org is refused (403)")

    def stranger() -> None:
        other = MemoryClient(api_key=key, host=url, org_id=str(uuid.uuid4()), project_id=str(uuid.uuid4()))
        other.get_all(user_id=alice)

    exc = expect_raises(Exception, stranger, "a client for another org's project")
    check("Invalid API key for this organization" in str(exc), "refused by the server's 403", str(exc))
    check_eq(side.project.delete().get("message"), "Project and related data deleted successfully.", "delete")

    step("feedback: the request is stored even though this SDK raises TypeError afterwards")
    resp = client.add(
        [{"role": "user", "content": "Alice drinks green tea."}],
        user_id=alice,
        infer=False,
        async_mode=False,
        output_format="v1.1",
    )
    mem_id = resp["results"][0]["id"]
    with_ignored = client.add(
        [{"role": "user", "content": "Alice keeps a paper diary."}],
        user_id=alice,
        infer=False,
        prompt_profile_id="pp_1",
        force_add_only=True,
    )
    item = with_ignored[0] if isinstance(with_ignored, list) else with_ignored["results"][0]
    event = raw_get(url, key, f"/v1/event/{item['event_id']}/")
    check_eq(
        [n.split(" ", 1)[0] for n in event["metadata"]["notes"]],
        ["force_add_only", "prompt_profile_id"],
        "the add's event notes the parameters accepted without effect",
    )
    client.delete(event["results"][0]["id"])
    # mem0ai <= 1.0.11 calls capture_client_event() with 4 arguments, after the request was sent
    with contextlib.suppress(TypeError):
        client.feedback(mem_id, "VERY_NEGATIVE", "wrong")
    stored = raw_get(url, key, f"/v1/feedback/?memory_id={mem_id}")["results"]
    check_eq([(f["feedback"], f["feedback_reason"]) for f in stored], [("VERY_NEGATIVE", "wrong")], "stored feedback")

    step("create_memory_export / get_memory_export (org_id, project_id in the body)")
    export = client.create_memory_export(json.dumps(SCHEMA), filters={"user_id": alice})
    check_keys(export, ["message", "id"], "create_memory_export")
    check_eq(client.get_memory_export(memory_export_id=export["id"])["facts"], ["Alice drinks green tea."], "export")

    step("get_summary")
    summary = client.get_summary(filters={"user_id": alice})
    check_eq(summary[0]["summary"], "Summary: Alice drinks green tea.", "summary")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "full"
    run(scenario, f"{NAME} {mode}")
