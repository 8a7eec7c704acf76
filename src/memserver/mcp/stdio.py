"""`memserver mcp`: the MCP tools over stdio, forwarding each call to a memserver over HTTP."""

from __future__ import annotations

import sys

import anyio
import httpx
from mcp.server.mcpserver import Context

from memserver.mcp.tools import Connection, api_error, build_server, key_defaults

NO_KEY = (
    "memserver mcp: no API key. Set MEM0_API_KEY (or MEMSERVER_API_KEY) in the environment of this command "
    "(create one with `memserver keys create`)."
)


def _fail(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    raise SystemExit(1)


async def serve(url: str, key: str | None, defaults: dict[str, str], *, timeout_s: float) -> None:
    """Check the key once, then answer MCP on stdin/stdout until the client closes it."""
    if not key:
        _fail(NO_KEY)
    authorization = f"Token {key}"
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout_s) as client:
        try:
            ping = await client.get("/v1/ping/", headers={"Authorization": authorization})
        except httpx.HTTPError as exc:
            # Not fatal: the client may start before the server; each tool call reports it again.
            sys.stderr.write(f"memserver mcp: {url} is not reachable yet ({exc}); tools will retry\n")
        else:
            if ping.status_code in (401, 403):
                _fail(f"memserver mcp: {url} refused the API key: {api_error(ping)}")
            if not defaults and ping.status_code == 200:  # none given: the key's own defaults, if any
                defaults = key_defaults(ping.json())
        connection = Connection(client, authorization, defaults)

        async def resolve(ctx: Context) -> Connection:
            return connection

        await build_server(resolve).run_stdio_async()


def run(url: str, key: str | None, defaults: dict[str, str], *, timeout_s: float) -> None:
    anyio.run(lambda: serve(url, key, defaults, timeout_s=timeout_s))
