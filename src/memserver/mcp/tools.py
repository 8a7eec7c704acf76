"""The MCP tools: each one is the equivalent request to memserver's REST API, made with the caller's key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import quote

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from memserver import __version__

ENTITY_KEYS = ("user_id", "agent_id", "app_id", "run_id")
NO_ENTITY = (
    "Give at least one of user_id, agent_id, app_id, run_id (or configure a default: `?user_id=...` on the "
    "MCP URL, an `X-Memserver-User-Id` header, or `memserver mcp --user-id ...`)."
)
INSTRUCTIONS = """\
memserver remembers facts across conversations. Memories belong to an entity: a user_id, agent_id,
app_id and/or run_id. Search before answering questions about the user; add durable facts the user
shares (preferences, plans, names). Every call is confined to the API key's project, and a key bound to
a user (or agent) reaches only that entity's memories: calls naming another are refused."""


def key_defaults(ping: Mapping[str, Any]) -> dict[str, str]:
    """The key's stored default entity ids, as `GET /v1/ping/` reports them (memserver extension)."""
    pairs = (("user_id", ping.get("default_user_id")), ("agent_id", ping.get("default_agent_id")))
    return {k: str(v) for k, v in pairs if v}


@dataclass
class Connection:
    """How one tool call reaches the REST API: an HTTP client, the caller's credentials and default ids."""

    client: httpx.AsyncClient
    authorization: str | None
    defaults: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """One REST request; a non-2xx answer becomes a ToolError carrying the API's own message."""
        headers = {"Authorization": self.authorization} if self.authorization else {}
        try:
            resp = await self.client.request(method, path, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ToolError(f"memserver is unreachable at {self.client.base_url}: {exc}") from None
        if resp.status_code >= 400:
            raise ToolError(f"memserver answered {resp.status_code}: {api_error(resp)}")
        return resp.json()

    def entity_ids(self, given: Mapping[str, str | None], *, use_defaults: bool = True) -> dict[str, str]:
        """The ids named in the call; when none is, the connection's defaults."""
        ids = {k: v for k, v in given.items() if v}
        if not ids and use_defaults:
            ids = dict(self.defaults)
        return ids


def api_error(resp: httpx.Response) -> str:
    """The human-readable message of a REST error body (`detail`, else `error`/`message`)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
        return str(body)[:500]
    return str(body)[:500]


Resolver = Callable[[Context], Awaitable[Connection]]


class Message(BaseModel):
    role: Literal["user", "assistant", "system"] = Field(description="Who said it.")
    content: str = Field(description="What was said.")


UserId = Annotated[str | None, Field(description="The user the memories are about (e.g. 'alice').")]
AgentId = Annotated[str | None, Field(description="The agent the memories belong to.")]
AppId = Annotated[str | None, Field(description="The application the memories belong to.")]
RunId = Annotated[str | None, Field(description="The run / session the memories belong to.")]
MemoryId = Annotated[str, Field(description="The memory's id (a UUID, as returned by add, list or search).")]

# Field names (the wire names are their camelCase aliases: readOnlyHint...).
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def _filters(ids: Mapping[str, str]) -> dict[str, Any]:
    """v3 list/search take the entity ids inside `filters`; several ids are ANDed."""
    conds = [{k: v} for k, v in ids.items()]
    return conds[0] if len(conds) == 1 else {"AND": conds}


def build_server(resolve: Resolver) -> MCPServer[Any]:
    """An MCP server whose tools reach the REST API through the Connection `resolve` gives each call."""
    server: MCPServer[Any] = MCPServer(
        "memserver",
        title="memserver memories",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",  # basicConfig is a no-op once memserver configured logging
    )

    @server.tool(title="Add memories", annotations=WRITE)
    async def add_memories(
        ctx: Context,
        text: Annotated[str | None, Field(description="A fact to remember, stored as one user message.")] = None,
        messages: Annotated[
            list[Message] | None, Field(description="A conversation to remember (instead of `text`).")
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        app_id: AppId = None,
        run_id: RunId = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Free-form JSON stored with each memory.")] = None,
        infer: Annotated[
            bool,
            Field(
                description="false (default): store each message verbatim, synchronously. true: let the server's "
                "LLM extract facts asynchronously (only when the server has one configured; the answer is then "
                "a PENDING event)."
            ),
        ] = False,
    ) -> dict[str, Any]:
        """Remember a fact or a conversation for a user/agent/app/run. Returns the memories created."""
        conn = await resolve(ctx)
        if (text is None) == (messages is None):
            raise ToolError("Give exactly one of `text` or `messages`.")
        ids = conn.entity_ids({"user_id": user_id, "agent_id": agent_id, "app_id": app_id, "run_id": run_id})
        if not ids:
            raise ToolError(NO_ENTITY)
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": text}]
            if text is not None
            else [m.model_dump() for m in messages or []],
            "infer": infer,
            **ids,
        }
        if metadata is not None:
            body["metadata"] = metadata
        result: dict[str, Any] = await conn.call("POST", "/v3/memories/add/", json=body)
        return result

    @server.tool(title="Search memories", annotations=READ_ONLY)
    async def search_memories(
        ctx: Context,
        query: Annotated[str, Field(description="What to look for, in natural language.")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        app_id: AppId = None,
        run_id: RunId = None,
        top_k: Annotated[int, Field(ge=1, le=100, description="Most results to return.")] = 10,
        threshold: Annotated[
            float | None, Field(ge=0, le=1, description="Minimum relevance score 0..1 (server default 0.1).")
        ] = None,
        reference_date: Annotated[
            str | int | None,
            Field(
                description='"Now" for times the query names ("last week", "yesterday"): YYYY-MM-DD, an ISO-8601 '
                "datetime or unix seconds. Default: the server's clock."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Find the memories most relevant to a query (hybrid semantic + keyword search), best first. Times in the
        query ("what did I do last week?") favour memories about that time.

        Each result has `memory` (the text), `id`, `score` (0..1), `score_breakdown` and, when the query names a
        time, `score_reasons`."""
        conn = await resolve(ctx)
        ids = conn.entity_ids({"user_id": user_id, "agent_id": agent_id, "app_id": app_id, "run_id": run_id})
        if not ids:
            raise ToolError(NO_ENTITY)
        body: dict[str, Any] = {"query": query, "filters": _filters(ids), "top_k": top_k}
        if threshold is not None:
            body["threshold"] = threshold
        if reference_date is not None:
            body["reference_date"] = reference_date
        result: dict[str, Any] = await conn.call("POST", "/v3/memories/search/", json=body)
        return result

    @server.tool(title="List memories", annotations=READ_ONLY)
    async def list_memories(
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        app_id: AppId = None,
        run_id: RunId = None,
        page: Annotated[int, Field(ge=1, description="Page number, from 1.")] = 1,
        page_size: Annotated[int, Field(ge=1, le=200, description="Memories per page.")] = 50,
    ) -> dict[str, Any]:
        """List an entity's memories, newest first, one page at a time: {count, next, previous, results}."""
        conn = await resolve(ctx)
        ids = conn.entity_ids({"user_id": user_id, "agent_id": agent_id, "app_id": app_id, "run_id": run_id})
        if not ids:
            raise ToolError(NO_ENTITY)
        body = {"filters": _filters(ids), "page": page, "page_size": page_size}
        result: dict[str, Any] = await conn.call("POST", "/v3/memories/", json=body)
        return result

    @server.tool(title="Get a memory and its history", annotations=READ_ONLY)
    async def get_memory(ctx: Context, memory_id: MemoryId) -> dict[str, Any]:
        """One memory with its history: every change (ADD, UPDATE, DELETE) with the old and new text."""
        conn = await resolve(ctx)
        mid = quote(memory_id, safe="")
        memory = await conn.call("GET", f"/v1/memories/{mid}/")
        history = await conn.call("GET", f"/v1/memories/{mid}/history/")
        return {"memory": memory, "history": history}

    @server.tool(title="Update a memory", annotations=WRITE)
    async def update_memory(
        ctx: Context,
        memory_id: MemoryId,
        text: Annotated[str | None, Field(description="The memory's new text.")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="New metadata (replaces the old metadata).")
        ] = None,
    ) -> dict[str, Any]:
        """Change a memory's text and/or metadata; the old text stays in its history."""
        conn = await resolve(ctx)
        if text is None and metadata is None:
            raise ToolError("Give `text` and/or `metadata` to update.")
        body: dict[str, Any] = {}
        if text is not None:
            body["text"] = text
        if metadata is not None:
            body["metadata"] = metadata
        result: dict[str, Any] = await conn.call("PUT", f"/v1/memories/{quote(memory_id, safe='')}/", json=body)
        return result

    @server.tool(title="Delete a memory", annotations=DESTRUCTIVE)
    async def delete_memory(ctx: Context, memory_id: MemoryId) -> dict[str, Any]:
        """Delete one memory by id."""
        conn = await resolve(ctx)
        result: dict[str, Any] = await conn.call("DELETE", f"/v1/memories/{quote(memory_id, safe='')}/")
        return result

    @server.tool(title="Delete all memories of an entity", annotations=DESTRUCTIVE)
    async def delete_all_memories(
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        app_id: AppId = None,
        run_id: RunId = None,
    ) -> dict[str, Any]:
        """Delete every memory of the named user/agent/app/run (all of the ids given must match).

        An id must be given explicitly: the connection's default is not used here, and '*' is refused,
        so this never wipes more than one entity's memories."""
        conn = await resolve(ctx)
        given = {"user_id": user_id, "agent_id": agent_id, "app_id": app_id, "run_id": run_id}
        ids = conn.entity_ids(given, use_defaults=False)
        if not ids:
            raise ToolError("Name the entity whose memories to delete: user_id, agent_id, app_id or run_id.")
        if any(v.strip() == "*" for v in ids.values()):
            raise ToolError("'*' is not allowed here: delete_all_memories deletes one entity's memories.")
        result: dict[str, Any] = await conn.call("DELETE", "/v1/memories/", params=ids)
        return result

    return server
