"""`as_of` (memory as it stood at a past moment) against today's list and search, over HTTP.

    .venv/bin/python -m bench.as_of                  # 10k memories, 200 requests of each kind per instant
    .venv/bin/python -m bench.as_of --quick          # smoke size: 2k memories, 40 requests

One user holds `--n` memories recorded over 100 days (the add's `timestamp` backdates each day's adds, as a
backfill does), written through the single write path (`MemoryWriter`, the statements the API runs): 20% of
them get a new text later and 5% are deleted later, each change on a random day after the memory's add
(an inferred add's `timestamp` dates its changes the same way). Every history row is what the API writes:
occurred_at, the vector a change took away. A real `memserver serve` (the fake OpenAI-compatible embedder,
so a query's embedding costs the same ~1 ms on both paths and the SQL is what differs) then answers, at
concurrency 1, interleaved so both meet the same machine load:
- list: `POST /v3/memories/` (page_size 100) today, and with `as_of` at days 10, 50, 90 and 99;
- search: `POST /v3/memories/search/` (top_k 10, hybrid), the same pairs, each query unique.
The further back the instant, the more memories changed since (their history rows are read): the table
says how many. Also measured: what history's vectors cost on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text as sql
from tests.fakes.openai_server import fake_embedder_server, fake_embedding

from bench.workload import generate_queries, generate_texts
from harness.postgres import PostgresRun
from harness.stats import latency_summary
from harness.tenants import new_tenant
from memserver.domain.changes import AddDefaults, ChangeSet, MemoryEdit, MemoryRemoval, NewMemory
from memserver.domain.scope import Scope
from memserver.pipeline.messages import text_hash
from memserver.storage.db import Database
from memserver.storage.repositories.memory_writes import MemoryWriter

DIM = 384
DAYS = 100
START = datetime(2025, 1, 1, tzinfo=UTC)
USER = "bench-user"
INSTANTS = (10, 50, 90, 99)  # days


def log(msg: str) -> None:
    sys.stderr.write(f"[bench.as_of {datetime.now(UTC):%H:%M:%S}] {msg}\n")
    sys.stderr.flush()


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def day(d: float) -> datetime:
    return START + timedelta(days=d)


def vector(text: str) -> np.ndarray:
    return np.asarray(fake_embedding(text, DIM), dtype=np.float32)


async def load(url: str, project_id: uuid.UUID, n: int, updated: float, deleted: float, seed: int) -> dict[str, Any]:
    """Write the memories day by day, then their updates and deletions on their own days."""
    rng = random.Random(seed)
    texts = list(dict.fromkeys(generate_texts(n * 2, seed)))[:n]
    scope = Scope(user_id=USER)
    db = Database(url)
    t0 = time.perf_counter()
    born: dict[uuid.UUID, int] = {}
    try:
        per_day = -(-len(texts) // DAYS)
        for d in range(DAYS):
            chunk = texts[d * per_day : (d + 1) * per_day]
            items = [
                NewMemory(text=t, hash=text_hash(t), scope=scope, embedding=vector(t), index=i)
                for i, t in enumerate(chunk)
            ]
            if not items:
                continue
            async with db.transaction() as conn:
                out = await MemoryWriter(conn).insert_new(
                    project_id, items, AddDefaults(created_at=day(d)), event_id=uuid.uuid4()
                )
            born.update({o.id: d for o in out if o.id is not None})
        ids = list(born)
        rng.shuffle(ids)
        n_upd, n_del = int(len(ids) * updated), int(len(ids) * deleted)
        changes: dict[int, ChangeSet] = {}
        for k, mid in enumerate(ids[: n_upd + n_del]):
            when = rng.randint(born[mid], DAYS - 1)
            cs = changes.setdefault(when, ChangeSet())
            if k < n_upd:
                text = f"{texts[k % len(texts)]} (revised {k})"
                cs.edits.append(MemoryEdit(memory_id=mid, text=text, hash=text_hash(text), embedding=vector(text)))
            else:
                cs.removals.append(MemoryRemoval(memory_id=mid))
        for when in sorted(changes):  # an add stamped with that day made them (its changes count then)
            async with db.transaction() as conn:
                await MemoryWriter(conn).apply(
                    project_id,
                    changes[when],
                    AddDefaults(created_at=day(when) + timedelta(hours=12)),
                    event_id=uuid.uuid4(),
                )
        async with db.connect() as conn:
            await conn.execute(sql("ANALYZE memories"))
            await conn.execute(sql("ANALYZE memory_history"))
            stats = (
                await conn.execute(
                    sql(
                        "SELECT count(*) AS rows, count(old_embedding) AS with_vector, "
                        "coalesce(sum(pg_column_size(old_embedding)), 0) AS vector_bytes, "
                        "pg_total_relation_size('memory_history') AS history_bytes, "
                        "(SELECT count(*) FROM memories) AS memories FROM memory_history"
                    )
                )
            ).one()
    finally:
        await db.dispose()
    return {
        "memories_added": len(born),
        "updated": n_upd,
        "deleted": n_del,
        "memories_now": stats.memories,
        "history_rows": stats.rows,
        "history_rows_with_vector": stats.with_vector,
        "history_vector_bytes": stats.vector_bytes,
        "bytes_per_vector": round(stats.vector_bytes / max(1, stats.with_vector)),
        "history_table_bytes": stats.history_bytes,
        "load_s": round(time.perf_counter() - t0, 1),
    }


def changed_since(url: str, project_id: uuid.UUID, at: datetime) -> int:
    async def count() -> int:
        db = Database(url)
        try:
            async with db.connect() as conn:
                q = sql(
                    "SELECT count(DISTINCT memory_id) FROM memory_history WHERE project_id = :p "
                    "AND coalesce(occurred_at, created_at) > :t"
                )
                return int((await conn.execute(q, {"p": project_id, "t": at})).scalar_one())
        finally:
            await db.dispose()

    return asyncio.run(count())


def measure(base: str, key: str, queries: list[str], requests: int, url: str, project_id: uuid.UUID) -> dict[str, Any]:
    """Today's list and search, and the same at each instant, interleaved request by request."""
    out: dict[str, Any] = {}
    filters = {"user_id": USER}
    with httpx.Client(base_url=base, headers={"Authorization": f"Token {key}"}, timeout=60) as client:

        def post(path: str, body: dict[str, Any]) -> float:
            t0 = time.perf_counter()
            r = client.post(path, json=body)
            elapsed = time.perf_counter() - t0
            r.raise_for_status()
            return elapsed

        qi = iter(queries)
        for _ in range(20):  # warm-up: connections, plans, caches
            post("/v3/memories/", {"filters": filters, "page_size": 100})
            post("/v3/memories/search/", {"query": next(qi), "filters": filters})
        for d in INSTANTS:
            at = day(d + 0.5).isoformat()
            lat: dict[str, list[float]] = {"list": [], "list_as_of": [], "search": [], "search_as_of": []}
            sizes = []
            for _ in range(requests):
                lat["list"].append(post("/v3/memories/", {"filters": filters, "page_size": 100}))
                lat["list_as_of"].append(post("/v3/memories/", {"filters": filters, "page_size": 100, "as_of": at}))
                lat["search"].append(post("/v3/memories/search/", {"query": next(qi), "filters": filters}))
                lat["search_as_of"].append(
                    post("/v3/memories/search/", {"query": next(qi), "filters": filters, "as_of": at})
                )
            r = client.post("/v3/memories/", json={"filters": filters, "page_size": 1, "as_of": at})
            sizes.append(r.json()["count"])
            s = {k: latency_summary(v) for k, v in lat.items()}
            out[f"day {d}"] = {
                "as_of": at,
                "memories_then": sizes[0],
                "changed_since": changed_since(url, project_id, day(d + 0.5)),
                **s,
                "list_p95_ratio": round(s["list_as_of"]["p95_ms"] / s["list"]["p95_ms"], 2),
                "search_p95_ratio": round(s["search_as_of"]["p95_ms"] / s["search"]["p95_ms"], 2),
            }
            log(f"day {d}: {json.dumps(out[f'day {d}'])}")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=10_000, help="memories of the one user")
    p.add_argument("--updated", type=float, default=0.20, help="share of them given a new text later")
    p.add_argument("--deleted", type=float, default=0.05, help="share of them deleted later")
    p.add_argument("--requests", type=int, default=200, help="timed requests of each kind per instant")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--quick", action="store_true", help="smoke size: 2k memories, 40 requests")
    p.add_argument("--out", type=Path, default=Path("bench/results/as_of.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.requests = 2_000, 40
    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "loadavg_at_start": loadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    base = generate_queries(200, args.seed)
    wanted = args.requests * 2 * len(INSTANTS) + 40
    queries = [f"{base[i % len(base)]} ({i})" for i in range(wanted)]  # unique: no cache answers one
    with PostgresRun("memserver-bench-as-of-") as run:
        url = run.migrate()
        project_id, key = asyncio.run(new_tenant(url, "bench", "as-of"))
        log(f"loading {args.n} memories over {DAYS} days, then their updates and deletions")
        result["load"] = asyncio.run(load(url, project_id, args.n, args.updated, args.deleted, args.seed))
        log(f"loaded: {result['load']}")
        with fake_embedder_server(url, run.workdir / "memserver.log", MEMSERVER_EMBEDDER__CACHE_SIZE="0") as (srv, _):
            result["latency"] = measure(srv.url, key, queries, args.requests, url, project_id)
    result["loadavg_at_end"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print_table(result)


def print_table(r: dict[str, Any]) -> None:
    ld = r["load"]
    lines = [
        f"{ld['memories_added']} memories of one user over {DAYS} days; {ld['updated']} updated, "
        f"{ld['deleted']} deleted later ({ld['memories_now']} today); history {ld['history_rows']} rows, "
        f"{ld['history_rows_with_vector']} with a vector ({ld['bytes_per_vector']} B each, "
        f"{ld['history_vector_bytes'] / 1e6:.1f} MB of {ld['history_table_bytes'] / 1e6:.1f} MB)",
        f"{'as_of':8} {'then':>6} {'changed':>8} | {'list p50/p95 ms':>17} {'as_of p50/p95':>15} {'x p95':>6} | "
        f"{'search p50/p95 ms':>17} {'as_of p50/p95':>15} {'x p95':>6}",
    ]
    for name, v in r["latency"].items():
        lines.append(
            f"{name:8} {v['memories_then']:>6} {v['changed_since']:>8} | "
            f"{v['list']['p50_ms']:>8.1f}/{v['list']['p95_ms']:<8.1f} "
            f"{v['list_as_of']['p50_ms']:>7.1f}/{v['list_as_of']['p95_ms']:<7.1f} {v['list_p95_ratio']:>6} | "
            f"{v['search']['p50_ms']:>8.1f}/{v['search']['p95_ms']:<8.1f} "
            f"{v['search_as_of']['p50_ms']:>7.1f}/{v['search_as_of']['p95_ms']:<7.1f} {v['search_p95_ratio']:>6}"
        )
    lines.append(f"load average {r['loadavg_at_start']} -> {r['loadavg_at_end']}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
