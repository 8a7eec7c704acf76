"""MCP, driven with the official `mcp` client SDK against a real `memserver serve` process:
over streamable HTTP at /mcp and over stdio (`memserver mcp`, forwarding to that server)."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

from harness import ROOT
from memserver.mcp.http import default_ids

TOOLS = {
    "add_memories",
    "search_memories",
    "list_memories",
    "get_memory",
    "update_memory",
    "delete_memory",
    "delete_all_memories",
}


@asynccontextmanager
async def over_http(base_url: str, key: str | None, *, query: str = "") -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Token {key}"} if key is not None else {}
    with anyio.fail_after(60):
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(f"{base_url}/mcp{query}", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


@asynccontextmanager
async def over_stdio(base_url: str, key: str, *args: str, errlog: TextIO = sys.stderr) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "memserver.cli", "mcp", "--url", base_url, *args],
        env={"MEM0_API_KEY": key, "MEMSERVER_LOG_LEVEL": "warning"},
        cwd=ROOT,
    )
    with anyio.fail_after(60):
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def call(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    """A tool call that must succeed; its structured result."""
    result = await session.call_tool(tool, args)
    assert not result.is_error, f"{tool} failed: {text_of(result)}"
    assert result.structured_content is not None
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **args: Any) -> str:
    """A tool call that must fail; the message the model reads."""
    result = await session.call_tool(tool, args)
    assert result.is_error, f"{tool} should have failed: {text_of(result)}"
    return text_of(result)


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def memories_of(page: dict[str, Any]) -> list[str]:
    return [m["memory"] for m in page["results"]]


def test_default_entity_ids_come_from_the_url_or_headers_never_a_wildcard() -> None:
    assert default_ids({"user_id": "alice"}, {}) == {"user_id": "alice"}
    assert default_ids({}, {"x-memserver-agent-id": "helper", "x-memserver-run-id": " r1 "}) == {
        "agent_id": "helper",
        "run_id": "r1",
    }
    assert default_ids({"user_id": "alice"}, {"x-memserver-user-id": "bob"}) == {"user_id": "alice"}
    assert default_ids({"user_id": "*", "app_id": " "}, {}) == {}


# -- streamable HTTP ---------------------------------------------------------------------------
async def test_http_lists_the_memory_tools_with_descriptions_and_schemas(
    live_server: str, tenant: tuple[str, str]
) -> None:
    async with over_http(live_server, tenant[1]) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 20, tool.name
        assert tool.input_schema["type"] == "object"
    add = tools["add_memories"].input_schema["properties"]
    assert {"text", "messages", "user_id", "agent_id", "app_id", "run_id", "metadata", "infer"} <= set(add)
    assert add["infer"]["default"] is False
    assert tools["search_memories"].input_schema["required"] == ["query"]
    assert tools["get_memory"].input_schema["required"] == ["memory_id"]
    assert tools["delete_memory"].annotations is not None
    assert tools["delete_memory"].annotations.destructive_hint
    assert tools["search_memories"].annotations is not None
    assert tools["search_memories"].annotations.read_only_hint


async def test_http_add_search_get_update_delete(live_server: str, tenant: tuple[str, str]) -> None:
    async with over_http(live_server, tenant[1]) as session:
        added = await call(session, "add_memories", text="I moved to Lisbon in March.", user_id="alice")
        assert added["status"] == "SUCCEEDED"
        [item] = added["results"]
        mid = item["id"]
        conversation = [
            {"role": "user", "content": "My sister Ana plays the cello."},
            {"role": "assistant", "content": "Noted!"},
        ]
        await call(session, "add_memories", messages=conversation, user_id="alice", metadata={"topic": "family"})

        hits = (await call(session, "search_memories", query="where does the user live?", user_id="alice"))["results"]
        assert hits[0]["id"] == mid
        assert set(hits[0]["score_breakdown"]) >= {"semantic", "bm25"}

        page = await call(session, "list_memories", user_id="alice")
        assert page["count"] == 3
        assert "My sister Ana plays the cello." in memories_of(page)

        await call(session, "update_memory", memory_id=mid, text="I moved to Porto in March.")
        got = await call(session, "get_memory", memory_id=mid)
        assert got["memory"]["memory"] == "I moved to Porto in March."
        assert [h["event"] for h in got["history"]] == ["ADD", "UPDATE"]
        assert got["history"][1]["old_memory"] == "I moved to Lisbon in March."

        await call(session, "delete_memory", memory_id=mid)
        assert "404" in await call_error(session, "get_memory", memory_id=mid)
        deleted = await call(session, "delete_all_memories", user_id="alice")
        assert deleted["deleted_count"] == 2
        assert (await call(session, "list_memories", user_id="alice"))["count"] == 0


async def test_http_refuses_a_missing_or_wrong_key(live_server: str) -> None:
    async with httpx.AsyncClient() as raw:
        for headers in ({}, {"Authorization": "Token m0-not-a-key"}, {"Authorization": "Basic abc"}):
            resp = await raw.post(
                f"{live_server}/mcp",
                headers={**headers, "Accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            )
            assert resp.status_code == 401
            assert "Invalid API key" in resp.json()["detail"]
    # the SDK client gets no session: initialize fails on the 401 (the SDK reports it as an MCPError)
    with pytest.raises(ExceptionGroup, match="TaskGroup") as raised:
        async with over_http(live_server, "m0-not-a-key"):
            pass
    assert raised.group_contains(MCPError, match="error response", depth=None)


async def test_http_never_shows_another_projects_memories(
    live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    _, key_a = make_tenant()
    _, key_b = make_tenant()
    async with over_http(live_server, key_a) as a:
        [item] = (await call(a, "add_memories", text="The launch code is 4711.", user_id="alice"))["results"]
    mid = item["id"]
    async with over_http(live_server, key_b) as b:
        assert (await call(b, "search_memories", query="launch code", user_id="alice", threshold=0))["results"] == []
        assert (await call(b, "list_memories", user_id="alice"))["count"] == 0
        assert "404" in await call_error(b, "get_memory", memory_id=mid)
        assert "404" in await call_error(b, "update_memory", memory_id=mid, text="hijacked")
        assert "404" in await call_error(b, "delete_memory", memory_id=mid)
        assert (await call(b, "delete_all_memories", user_id="alice"))["deleted_count"] == 0
    async with over_http(live_server, key_a) as a:
        got = await call(a, "get_memory", memory_id=mid)
    assert got["memory"]["memory"] == "The launch code is 4711."


async def test_http_default_entity_from_the_url_and_delete_all_needs_an_explicit_id(
    live_server: str, tenant: tuple[str, str]
) -> None:
    async with over_http(live_server, tenant[1], query="?user_id=bob") as session:
        await call(session, "add_memories", text="Bob drinks his coffee black.")
        hits = (await call(session, "search_memories", query="coffee"))["results"]
        assert [h["user_id"] for h in hits] == ["bob"]
        message = await call_error(session, "delete_all_memories")
        assert "Name the entity" in message
        assert "'*' is not allowed" in await call_error(session, "delete_all_memories", user_id="*")
        assert (await call(session, "list_memories", user_id="bob"))["count"] == 1
    async with over_http(live_server, tenant[1]) as session:  # no default: the call must name one
        assert "user_id" in await call_error(session, "search_memories", query="coffee")


async def test_http_tool_errors_carry_the_api_message(live_server: str, tenant: tuple[str, str]) -> None:
    async with over_http(live_server, tenant[1]) as session:
        [item] = (await call(session, "add_memories", text="Likes tea.", user_id="carol"))["results"]
        message = await call_error(session, "update_memory", memory_id=item["id"], text="   ")
        assert "400" in message
        assert "text must not be empty" in message
        assert "memory_id should be a valid UUID" in await call_error(session, "get_memory", memory_id="nope")
        assert "exactly one of" in await call_error(session, "add_memories", user_id="carol")


# -- stdio ---------------------------------------------------------------------------------------
async def test_stdio_lists_tools_adds_searches_and_deletes(live_server: str, tenant: tuple[str, str]) -> None:
    async with over_stdio(live_server, tenant[1], "--user-id", "dana") as session:
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
        [item] = (await call(session, "add_memories", text="Dana is allergic to peanuts."))["results"]
        hits = (await call(session, "search_memories", query="what is dana allergic to?"))["results"]
        assert hits[0]["id"] == item["id"]
        assert hits[0]["user_id"] == "dana"
        await call(session, "delete_memory", memory_id=item["id"])
        assert (await call(session, "list_memories"))["count"] == 0
    # what the stdio tools did is what the REST API sees
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {tenant[1]}"}) as api:
        body = (await api.post("/v3/memories/", json={"filters": {"user_id": "dana"}})).json()
    assert body["count"] == 0


async def test_stdio_refuses_a_wrong_key(live_server: str, tmp_path: Path) -> None:
    with (tmp_path / "stderr.log").open("w") as errlog, pytest.raises(BaseException):  # noqa: PT011, B017
        async with over_stdio(live_server, "m0-not-a-key", errlog=errlog):  # exits before answering initialize
            pass
    stderr = (tmp_path / "stderr.log").read_text()
    assert "refused the API key" in stderr
    assert "Invalid API key" in stderr  # the REST API's own message


async def test_stdio_never_shows_another_projects_memories(
    live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    _, key_a = make_tenant()
    _, key_b = make_tenant()
    async with over_stdio(live_server, key_a) as a:
        [item] = (await call(a, "add_memories", text="Eve's locker code is 1234.", user_id="eve"))["results"]
    async with over_stdio(live_server, key_b) as b:
        assert (await call(b, "search_memories", query="locker code", user_id="eve", threshold=0))["results"] == []
        assert "404" in await call_error(b, "delete_memory", memory_id=item["id"])
    async with over_stdio(live_server, key_a) as a:
        assert json.dumps((await call(a, "get_memory", memory_id=item["id"]))["memory"]["memory"]) == json.dumps(
            "Eve's locker code is 1234."
        )


async def test_stdio_without_a_key_says_how_to_give_one(live_server: str) -> None:
    proc = await anyio.run_process(
        [sys.executable, "-m", "memserver.cli", "mcp", "--url", live_server],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1
    assert b"MEM0_API_KEY" in proc.stderr
    assert proc.stdout == b""  # stdout is the MCP channel: nothing else may be written to it


async def test_a_keys_stored_default_user_is_used_when_a_call_names_none(database_url: str, live_server: str) -> None:
    """`memserver keys create --default-user-id erin`: MCP calls with that key that name no entity act for erin
    (a default on the connection still wins); ping reports it."""
    from memserver.services import admin
    from memserver.storage.db import Database

    suffix = uuid.uuid4().hex[:8]

    async def make() -> str:
        db = Database(database_url)
        try:
            await admin.create_org(db, f"mcp-org-{suffix}")
            await admin.create_project(db, f"mcp-org-{suffix}", "mcp")
            _, key = await admin.create_key(
                db, f"mcp-org-{suffix}", "mcp", "mcp", "mcp@example.com", defaults={"user_id": "erin"}
            )
            return key
        finally:
            await db.dispose()

    key = await make()
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {key}"}) as api:
        assert (await api.get("/v1/ping/")).json()["default_user_id"] == "erin"
    async with over_http(live_server, key) as session:
        await call(session, "add_memories", text="Erin keeps bees.")
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {key}"}) as api:
        page = (await api.post("/v3/memories/", json={"filters": {"user_id": "erin"}})).json()
        assert memories_of(page) == ["Erin keeps bees."]
    async with over_stdio(live_server, key) as session:
        assert memories_of(await call(session, "list_memories")) == ["Erin keeps bees."]
    async with over_http(live_server, key, query="?user_id=frank") as session:
        assert (await call(session, "list_memories"))["count"] == 0  # the connection's default wins


async def test_search_takes_a_reference_date_for_the_times_a_query_names(
    live_server: str, tenant: tuple[str, str]
) -> None:
    """Dinners told the day after each: "last week" and "last year" of 2025-03-21 each pick theirs."""
    told = {"Tokyo": "2025-03-12T20:00:00Z", "Lisbon": "2024-06-10T20:00:00Z", "Paris": "2025-03-21T09:00:00Z"}
    ids = {}
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {tenant[1]}"}) as api:
        for city, ts in told.items():
            body = {"messages": f"I had dinner with Maya in {city} yesterday.", "user_id": "alice", "infer": False}
            r = await api.post("/v3/memories/add/", json={**body, "timestamp": ts})
            ids[city] = r.json()["results"][0]["id"]
    async with over_http(live_server, tenant[1]) as session:
        for words, city in (("last week", "Tokyo"), ("last year", "Lisbon")):
            query = f"Where did I have dinner with Maya {words}?"
            hits = await call(session, "search_memories", query=query, user_id="alice", reference_date="2025-03-21")
            assert hits["results"][0]["id"] == ids[city], words
            assert "temporal" in hits["results"][0]["score_reasons"]
        wrong = await call_error(session, "search_memories", query="x", user_id="alice", reference_date="someday")
        assert "reference_date: invalid value 'someday'" in wrong
