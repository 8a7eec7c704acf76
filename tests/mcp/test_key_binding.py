"""A key bound to an entity (`memserver keys create --bind-user-id alice`) reaches only that entity's memories:
over MCP (the official `mcp` client SDK, streamable HTTP and stdio) and over REST alike, id-based calls
included. Another user's memory is "not found", exactly like one that does not exist; a list, search, add or
delete naming another user is refused; every route that is not confined refuses the key."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, server_env
from memserver.services import admin
from memserver.storage.db import Database
from tests.api.scripted_llm import fact, facts, fake, llm, llm_server, prompt_of
from tests.fakes.openai_server import FakeOpenAI
from tests.mcp.test_mcp import call, call_error, memories_of, over_http, over_stdio

__all__ = ["fake", "llm", "llm_server"]  # the scripted model's fixtures


@dataclass
class Tenant:
    owner: str  # an unbound key of the project
    alice: str  # a key bound to user_id alice
    alice_ids: list[str]
    bob_ids: list[str]


def rest(base: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Token {key}"}, timeout=30)


async def add(api: httpx.AsyncClient, text: str, **ids: str) -> str:
    body = {"messages": [{"role": "user", "content": text}], "infer": False, **ids}
    r = await api.post("/v3/memories/add/", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["results"][0]["id"])


@pytest.fixture
async def bound(database_url: str, live_server: str) -> Tenant:
    org = f"bind-{uuid.uuid4().hex[:8]}"
    db = Database(database_url)
    try:
        await admin.create_org(db, org)
        await admin.create_project(db, org, "p")
        _, owner = await admin.create_key(db, org, "p", "owner", "owner@example.com")
        _, alice = await admin.create_key(
            db, org, "p", "alice-agent", "owner@example.com", binding={"user_id": "alice"}
        )
    finally:
        await db.dispose()
    async with rest(live_server, owner) as api:
        alice_ids = [await add(api, "Alice likes tea.", user_id="alice")]
        bob_ids = [
            await add(api, "Bob's bank PIN is 4321.", user_id="bob"),
            await add(api, "Bob and the helper agent talk about tea.", user_id="bob", agent_id="helper"),
        ]
    return Tenant(owner, alice, alice_ids, bob_ids)


async def bob_is_intact(live_server: str, t: Tenant) -> None:
    async with rest(live_server, t.owner) as api:
        for mid in t.bob_ids:
            r = await api.get(f"/v1/memories/{mid}/")
            assert r.status_code == 200, r.text
            assert [h["event"] for h in (await api.get(f"/v1/memories/{mid}/history/")).json()] == ["ADD"]


# -- MCP -------------------------------------------------------------------------------------------
async def test_mcp_with_a_bound_key_reaches_only_its_users_memories(live_server: str, bound: Tenant) -> None:
    bob = bound.bob_ids[0]
    async with over_http(live_server, bound.alice) as session:
        # no entity named: the binding is the default
        assert memories_of(await call(session, "list_memories")) == ["Alice likes tea."]
        hits = await call(session, "search_memories", query="tea")
        assert [h["memory"] for h in hits["results"]] == ["Alice likes tea."]
        # id-based tools: Bob's memory answers exactly as a memory that does not exist
        unknown = str(uuid.uuid4())
        for tool, extra in (("get_memory", {}), ("update_memory", {"text": "hacked"}), ("delete_memory", {})):
            theirs = await call_error(session, tool, memory_id=bob, **extra)
            nothing = await call_error(session, tool, memory_id=unknown, **extra)
            assert "404" in theirs, theirs
            assert theirs == nothing.replace(unknown, bob), (theirs, nothing)
            assert "PIN" not in theirs
        # naming another user is refused
        for tool, args in (
            ("list_memories", {"user_id": "bob"}),
            ("search_memories", {"query": "PIN", "user_id": "bob"}),
            ("add_memories", {"text": "Bob owes Alice 100 EUR.", "user_id": "bob"}),
            ("delete_all_memories", {"user_id": "bob"}),
        ):
            message = await call_error(session, tool, **args)
            assert "403" in message, (tool, message)
            assert "bound to user_id 'alice'" in message, (tool, message)
        # ... and no filter shape reaches past the binding: an agent's memories are read only with alice's id
        assert (await call(session, "list_memories", agent_id="helper"))["count"] == 0
        # its own memories: everything works
        mine = await call(session, "add_memories", text="Alice moved to Lyon.")
        mid = mine["results"][0]["id"]
        assert (await call(session, "get_memory", memory_id=mid))["memory"]["user_id"] == "alice"
        await call(session, "update_memory", memory_id=mid, text="Alice lives in Lyon.")
        await call(session, "delete_memory", memory_id=mid)
    await bob_is_intact(live_server, bound)


async def test_mcp_over_stdio_with_a_bound_key_is_confined_too(live_server: str, bound: Tenant) -> None:
    async with over_stdio(live_server, bound.alice) as session:
        assert memories_of(await call(session, "list_memories")) == ["Alice likes tea."]
        assert "404" in await call_error(session, "get_memory", memory_id=bound.bob_ids[0])
        assert "403" in await call_error(session, "list_memories", user_id="bob")
    async with over_http(live_server, bound.alice, query="?user_id=bob") as session:  # a connection default
        assert "403" in await call_error(session, "list_memories")  # cannot widen the key
    await bob_is_intact(live_server, bound)


# -- REST: the binding is the key's, not the MCP connection's ------------------------------------------
async def test_rest_with_a_bound_key_is_confined(live_server: str, bound: Tenant) -> None:
    bob, unknown = bound.bob_ids[0], str(uuid.uuid4())
    async with rest(live_server, bound.alice) as api:
        ping = (await api.get("/v1/ping/")).json()
        assert (ping["bound_user_id"], ping["default_user_id"]) == ("alice", "alice")
        # by id: not found, word for word as an id that does not exist
        for method, suffix, body in (
            ("GET", "", None),
            ("GET", "history/", None),
            ("PUT", "", {"text": "hacked"}),
            ("DELETE", "", None),
        ):
            theirs = await api.request(method, f"/v1/memories/{bob}/{suffix}", json=body)
            nothing = await api.request(method, f"/v1/memories/{unknown}/{suffix}", json=body)
            assert theirs.status_code == nothing.status_code == 404, (method, suffix, theirs.text)
            assert theirs.json()["detail"] == nothing.json()["detail"]
        r = await api.request("DELETE", "/v1/batch/", json={"memory_ids": [bob]})
        assert r.status_code == 404, r.text
        r = await api.put("/v1/batch/", json={"memories": [{"memory_id": bob, "text": "hacked"}]})
        assert r.status_code == 404, r.text
        # filters naming another user, or a wildcard, are refused; the others are confined
        for r in (
            await api.post("/v3/memories/", json={"filters": {"user_id": "bob"}}),
            await api.post("/v2/memories/", json={"user_id": "bob"}),
            await api.get("/v1/memories/", params={"user_id": "bob"}),
            await api.get("/v1/memories/users/bob/"),
            await api.post(
                "/v3/memories/search/",
                json={"query": "PIN", "filters": {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}},
            ),
            await api.post("/v3/memories/search/", json={"query": "PIN", "filters": {"user_id": "*"}}),
            await api.post(
                "/v2/memories/search/",
                json={
                    "query": "PIN",
                    "filters": {"AND": [{"user_id": "alice"}, {"user_id": {"in": ["alice", "bob"]}}]},
                },
            ),
            await api.delete("/v1/memories/", params={"user_id": "bob"}),
            await api.delete("/v1/memories/", params={"user_id": "*"}),
            await api.post(
                "/v3/memories/add/", json={"messages": [{"role": "user", "content": "x"}], "user_id": "bob"}
            ),
        ):
            assert r.status_code == 403, (r.request.url, r.text)
            assert "bound to user_id 'alice'" in r.json()["detail"]
        search = await api.post("/v3/memories/search/", json={"query": "tea", "filters": {"agent_id": "helper"}})
        assert search.json()["results"] == []  # Bob's memory with the helper agent stays out of reach
        listed = await api.post("/v3/memories/", json={"filters": {"OR": [{"agent_id": "helper"}, {"app_id": "x"}]}})
        assert listed.json()["results"] == []
        r = await api.delete("/v1/memories/", params={"agent_id": "helper"})
        assert (r.status_code, r.json()["deleted_count"]) == (200, 0)
        # routes that are not confined to an entity refuse the key
        for method, path in (
            ("GET", "/v1/entities/"),
            ("GET", "/v1/events/"),
            ("GET", "/v1/memories/events/"),
            ("GET", "/api/v1/webhooks/projects/x/"),
            ("GET", "/v1/memserver/export/"),
            ("POST", "/v1/summary/"),
        ):
            r = await api.request(method, path, json={} if method == "POST" else None)
            assert r.status_code == 403, (path, r.text)
            assert "bound to user_id 'alice'" in r.json()["detail"]
    await bob_is_intact(live_server, bound)


async def test_a_bound_key_reads_the_events_of_its_own_adds_only(live_server: str, bound: Tenant) -> None:
    async with rest(live_server, bound.owner) as owner:
        r = await owner.post(
            "/v3/memories/add/", json={"messages": [{"role": "user", "content": "x"}], "user_id": "bob", "infer": False}
        )
        bobs_event = r.json()["event_id"]
    async with rest(live_server, bound.alice) as api:
        r = await api.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": "Alice sings."}], "user_id": "alice", "infer": False},
        )
        mine = r.json()["event_id"]
        assert (await api.get(f"/v1/event/{mine}/")).status_code == 200
        assert (await api.get(f"/v1/event/{bobs_event}/")).status_code == 404
        # an inferred add naming the agent too would write (and read) the agent's shared memories: refused
        r = await api.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": "hi"}], "user_id": "alice", "agent_id": "helper"},
        )
        assert r.status_code == 403, r.text
        assert "agent's shared memories" in r.json()["detail"]
        # an add naming no user is the bound user's; with the agent, verbatim, it is still alice's
        body = {"messages": [{"role": "user", "content": "Alice hums."}], "agent_id": "helper", "infer": False}
        r = await api.post("/v1/memories/", json=body)
        assert r.status_code == 200, r.text
        page = (await api.post("/v3/memories/", json={"filters": {"agent_id": "helper"}})).json()
        assert [(m["memory"], m["user_id"]) for m in page["results"]] == [("Alice hums.", "alice")]


async def test_a_bound_key_reads_only_its_own_scopes_results_of_an_event(
    llm_server: LiveServer, llm: FakeOpenAI, database_url: str
) -> None:
    """An add by the user AND the agent may change the agent's shared memory (the assistant's fact): the key
    bound to alice reads the add's event, but not the agent memory's text, old or new, nor its id."""
    org = f"bind-ev-{uuid.uuid4().hex[:8]}"
    db = Database(database_url)
    try:
        await admin.create_org(db, org)
        await admin.create_project(db, org, "p")
        _, owner = await admin.create_key(db, org, "p", "owner", "owner@example.com")
        _, alice = await admin.create_key(db, org, "p", "alice", "owner@example.com", binding={"user_id": "alice"})
    finally:
        await db.dispose()
    secret = "Told Bob his test result is positive"
    async with rest(llm_server.url, owner) as api:
        agent_memory = await add(api, secret, agent_id="doc")

        def decide(body: dict[str, Any]) -> str:
            prompt = prompt_of(body)
            ref = re.search(r"^ref (\d+): " + secret, prompt, re.M)
            assert ref is not None, prompt
            return facts(
                fact("Likes green tea", speaker="user", sources=[0]),
                fact(
                    "Told Bob his result is negative",
                    speaker="assistant",
                    action="UPDATE",
                    ref=int(ref[1]),
                    sources=[1],
                ),
            )

        llm.chat_script = decide
        messages = [
            {"role": "user", "content": "I like green tea."},
            {"role": "assistant", "content": "Noted. By the way, Bob's result is negative."},
        ]
        r = await api.post("/v3/memories/add/", json={"messages": messages, "user_id": "alice", "agent_id": "doc"})
        assert r.status_code == 200, r.text
        event_id = r.json()["event_id"]
        for _ in range(400):
            full = (await api.get(f"/v1/event/{event_id}/")).json()
            if full["status"] in ("SUCCEEDED", "FAILED"):
                break
            await asyncio.sleep(0.05)
        # the owner sees both outcomes: alice's new memory and the update of the agent's
        assert full["status"] == "SUCCEEDED", full
        assert sorted(o["event"] for o in full["results"]) == ["ADD", "UPDATE"]
        assert any(o["id"] == agent_memory for o in full["results"])
    async with rest(llm_server.url, alice) as api:
        r = await api.get(f"/v1/event/{event_id}/")
        assert r.status_code == 200, r.text
        assert [(o["event"], o["data"]["memory"]) for o in r.json()["results"]] == [("ADD", "Likes green tea")]
        assert agent_memory not in r.text
        # the LLM's decisions on the event: alice's own only (the UPDATE names the agent memory and its old text)
        assert [d["text"] for d in r.json()["metadata"]["decisions"]] == ["Likes green tea"]
        assert secret not in r.text  # the agent memory's old text
        assert "his result is negative" not in r.text  # its new text (the add's own messages are alice's to read)
        assert (await api.get(f"/v1/memories/{agent_memory}/")).status_code == 404


def test_keys_create_bind_user_id_from_the_command_line(database_url: str, live_server: str) -> None:
    org = f"bind-cli-{uuid.uuid4().hex[:8]}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "memserver.cli", *args],
            env=server_env(database_url, 0),
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("orgs", "create", org).returncode == 0
    assert cli("projects", "create", "default", "--org", org).returncode == 0
    made = cli("keys", "create", "--org", org, "--bind-user-id", "alice")
    assert made.returncode == 0, made.stderr
    assert "bound to user_id=alice" in made.stdout
    key = made.stdout.strip().splitlines()[-1]
    assert "bound user_id=alice" in cli("keys", "list").stdout
    headers = {"Authorization": f"Token {key}"}
    assert httpx.get(f"{live_server}/v1/ping/", headers=headers).json()["bound_user_id"] == "alice"
    r = httpx.post(f"{live_server}/v3/memories/", json={"filters": {"user_id": "bob"}}, headers=headers)
    assert r.status_code == 403
    bad = cli("keys", "create", "--org", org, "--bind-user-id", "alice", "--default-user-id", "bob")
    assert bad.returncode != 0
    assert "cannot default" in bad.stderr
