"""MCP over streamable HTTP at `/mcp`, served by the memserver app itself.

Every HTTP request to `/mcp` must carry a key the REST API accepts (checked with an in-process
`GET /v1/ping/`); a missing or wrong key gets the API's own 401 before any MCP message is read. Each
tool call then makes its REST request in-process with that same `Authorization` header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from memserver.mcp.tools import ENTITY_KEYS, Connection, build_server, key_defaults

INTERNAL_BASE_URL = "http://memserver.internal"
DEFAULT_ID_HEADERS = {k: f"x-memserver-{k.replace('_', '-')}" for k in ENTITY_KEYS}


def default_ids(query: dict[str, str] | Any, headers: dict[str, str] | Any) -> dict[str, str]:
    """Per-connection default entity ids: `?user_id=alice` on the MCP URL, or `X-Memserver-User-Id: alice`."""
    out: dict[str, str] = {}
    for key in ENTITY_KEYS:
        value = query.get(key) or headers.get(DEFAULT_ID_HEADERS[key])
        if value and value.strip() and value.strip() != "*":
            out[key] = value.strip()
    return out


class McpEndpoint:
    """The ASGI endpoint mounted at /mcp: key check, then the SDK's streamable HTTP session manager."""

    client: httpx.AsyncClient  # from `run`: the app's routes, in-process

    def __init__(self, *, timeout_s: float):
        self.timeout_s = timeout_s
        self.server = build_server(self._connection)
        # Stateless: every POST stands alone, so any uvicorn worker can answer it (sessions would
        # live in one worker's memory). DNS-rebinding checks are off because every request must
        # carry the API key in a header, which a rebinding page cannot send.
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.manager = self.server.session_manager

    async def _connection(self, ctx: Context) -> Connection:
        request = ctx.request_context.request
        headers = getattr(request, "headers", None) or {}
        query = getattr(request, "query_params", None) or {}
        authorization = headers.get("authorization")
        defaults = default_ids(query, headers)
        if not defaults:  # none on the connection: the key's own defaults, if it has any
            ping = await self.client.get("/v1/ping/", headers={"Authorization": authorization} if authorization else {})
            defaults = key_defaults(ping.json()) if ping.status_code == 200 else {}
        return Connection(self.client, authorization, defaults)

    @asynccontextmanager
    async def run(self, app: ASGIApp) -> AsyncIterator[None]:
        """Run the session manager for the app's lifetime (from the app's lifespan). Requests reach `app`
        in-process: same auth, validation, scoping and errors as over the network."""
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=INTERNAL_BASE_URL, timeout=self.timeout_s
        )
        try:
            async with self.manager.run():
                yield
        finally:
            await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        auth = headers.get("authorization")
        ping = await self.client.get("/v1/ping/", headers={"Authorization": auth} if auth else {})
        if ping.status_code != 200:
            await _relay(ping, scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


async def _relay(resp: httpx.Response, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with the REST API's own refusal (status and JSON body)."""
    headers = [(b"content-type", b"application/json")]
    if resp.status_code == 401:
        headers.append((b"www-authenticate", b'Token realm="memserver"'))
    await send({"type": "http.response.start", "status": resp.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": resp.content})
