"""memserver as the benchmark sees it: the public HTTP API (the calls Mem0's evaluation makes through its
client), and, without `--server`, a private Postgres + `memserver serve` kept in the run directory so that
`--resume` finds the memories of the adds already applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.locomo_qa.plan import Add
from harness.postgres import EMBEDDING_DIM
from harness.server import free_port, start_server, stop_server
from harness.tenants import new_tenant
from memserver.embedded_postgres import EmbeddedPostgres, write_private
from memserver.storage import migrate

ADD_TIMEOUT_S = 900.0  # a sync add waits for the model (memserver's own LLM timeout and retries come first)
EVENT_PAGE = 100


@dataclass
class Reply:
    status: int | None  # None: no HTTP answer (timeout, connection lost)
    body: Any
    seconds: float
    retry_after: float | None = None


class Memserver:
    """One API key's view of a memserver over HTTP."""

    def __init__(self, url: str, key: str, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=2 * concurrency + 4, max_keepalive_connections=2 * concurrency + 4)
        self.http = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Token {key}"}, timeout=ADD_TIMEOUT_S, limits=limits
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Reply:
        t0 = time.perf_counter()
        try:
            r = await self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            return Reply(None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
        seconds = time.perf_counter() - t0
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text[:500]
        after = r.headers.get("retry-after")
        return Reply(r.status_code, body, seconds, float(after) if after and after.isdigit() else None)

    async def ping(self) -> dict[str, Any]:
        r = await self._call("GET", "/v1/ping/")
        if r.status != 200:
            raise SystemExit(f"memserver refused the key: {r.status} {r.body}")
        return dict(r.body)

    async def set_custom_instructions(self, text: str | None) -> None:
        """The project's custom instructions, as Mem0's evaluation sets them (`update_project`)."""
        me = await self.ping()
        r = await self._call(
            "PATCH",
            f"/api/v1/orgs/organizations/{me['org_id']}/projects/{me['project_id']}/",
            json={"custom_instructions": text},
        )
        if r.status != 200:
            raise SystemExit(f"could not set the project's custom instructions: {r.status} {r.body}")

    async def delete_all(self, user_id: str) -> None:
        r = await self._call("DELETE", "/v1/memories/", params={"user_id": user_id})
        if r.status not in (200, 204, 404):
            raise SystemExit(f"could not clear {user_id}: {r.status} {r.body}")

    async def add(self, add: Add, marker: str) -> Reply:
        """One infer=true add, processed in the request (v1, async_mode=false), as Mem0's client sent it."""
        body = {
            "messages": list(add.messages),
            "user_id": add.user_id,
            "infer": True,
            "async_mode": False,
            "version": "v2",
            "output_format": "v1.1",
            "timestamp": add.ts,
            "metadata": {"timestamp": add.date, "qa_add": marker},
        }
        return await self._call("POST", "/v1/memories/", json=body)

    async def search(self, query: str, user_id: str, top_k: int) -> Reply:
        """v1 search, as the Mem0 client of the evaluation (`search(query, user_id=..., top_k=...)`)."""
        return await self._call(
            "POST", "/v1/memories/search/", json={"query": query, "user_id": user_id, "top_k": top_k}, timeout=120
        )

    async def find_events(self, markers: set[str], page_size: int = EVENT_PAGE) -> dict[str, dict[str, Any]]:
        """The add events carrying these `metadata.qa_add` markers (newest first; stops once all are found)."""
        found: dict[str, dict[str, Any]] = {}
        page = 1
        while markers - found.keys():
            r = await self._call("GET", "/v1/events/", params={"page": page, "page_size": page_size}, timeout=120)
            if r.status != 200:
                raise RuntimeError(f"listing events failed: {r.status} {r.body}")
            rows = r.body.get("results") or []
            for event in rows:
                payload = event.get("payload")
                metadata = payload.get("metadata") if isinstance(payload, dict) else None
                meta = metadata.get("qa_add") if isinstance(metadata, dict) else None
                if meta in markers and meta not in found:
                    found[meta] = event
            if len(rows) < page_size:
                break
            page += 1
        return found


def event_usage(event: dict[str, Any]) -> dict[str, Any]:
    """What memserver recorded on an add's event: LLM calls and tokens (and prompt tokens the server had cached,
    when it reports them)."""
    meta = event.get("metadata") or {}
    usage = {k: meta.get(k) for k in ("llm_calls", "prompt_tokens", "completion_tokens")}
    return usage | ({"cached_prompt_tokens": meta["cached_prompt_tokens"]} if "cached_prompt_tokens" in meta else {})


@contextlib.contextmanager
def private_server(run_dir: Path, env: dict[str, str], log: Any) -> Iterator[tuple[str, str]]:
    """Postgres in `<run_dir>/db` (kept between runs) and `memserver serve` with `env`; yields (URL, key)."""
    pg = EmbeddedPostgres(run_dir / "db", port=free_port())
    log(f"starting Postgres in {pg.data_dir}")
    pg.start()
    try:
        url = pg.url()
        migrate.upgrade(url, EMBEDDING_DIM)
        key_file = pg.data_dir / "bench-key"
        if key_file.exists():
            key = key_file.read_text().strip()
        else:
            _, key = asyncio.run(new_tenant(url, "bench", "locomo-qa"))
            write_private(key_file, key)
        logs = sorted(run_dir.glob("memserver-*.log"))
        server = start_server(url, run_dir / f"memserver-{len(logs) + 1}.log", **env)
        log(f"memserver on {server.url} (log {server.log})")
        try:
            yield server.url, key
        finally:
            stop_server(server)
    finally:
        pg.stop()
