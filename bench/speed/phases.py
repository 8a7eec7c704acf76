"""memserver's measured phases: ingest over raw HTTP and through the SDK, then search at each size."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from bench.speed.config import SEARCH_MODES, log
from bench.speed.http import http_run
from bench.speed.meters import CpuMeter, Profiler, StatementStats, proc_status_kb
from bench.speed.sdk import run_sdk_ingest, sdk_python
from bench.speed.stack import Stack
from bench.speed.workload import Workload, add_body, bulk_load, search_body
from harness import MODEL_CACHE
from harness.postgres import plain_url
from harness.stats import latency_summary


@dataclass
class Meters:
    """What every measured phase reads: the server's key, pg_stat_statements, CPU, py-spy, two connections."""

    stack: Stack
    args: argparse.Namespace
    project_id: uuid.UUID
    key: str
    admin: asyncpg.Connection  # to the `postgres` database: pg_stat_statements, CHECKPOINT
    conn: asyncpg.Connection  # to memserver's database: row counts, bulk load
    pgss: StatementStats
    cpu: CpuMeter
    profiler: Profiler


async def measured(
    m: Meters, profile_name: str | None, path: str, bodies: list[bytes], concurrency: int
) -> tuple[list[float], list[tuple[int, bytes]], float, dict[str, Any]]:
    """Send the bodies at this concurrency between two CPU and pg_stat_statements snapshots."""
    assert m.stack.server is not None
    if profile_name:
        m.profiler.start(profile_name)
    await m.pgss.reset()
    c0 = m.cpu.snapshot()
    lat, out, wall = await http_run(m.stack.server.url, m.key, path, bodies, concurrency)
    c1 = m.cpu.snapshot()
    db = await m.pgss.collect(len(bodies))
    extra = {"db": db, "cpu": CpuMeter.delta(c0, c1, len(bodies))}
    if profile_name and (prof := m.profiler.stop()):
        extra["profile"] = prof
    return lat, out, wall, extra


async def memserver_phases(stack: Stack, args: argparse.Namespace, wl: Workload) -> dict[str, Any]:
    """Tenants, server, warm-up, then ingest (raw HTTP, SDK) and search at each size; RSS at start and end."""
    project_id, key = await stack.tenant("main")
    sdk_project, sdk_key = await stack.tenant("sdk")
    stack.start_server()
    assert stack.server is not None
    server_pid = stack.server.proc.pid
    await asyncio.sleep(1.0)
    result: dict[str, Any] = {
        "server_pid": server_pid,
        "idle_rss_mb_after_startup": round((proc_status_kb(server_pid, "VmRSS") or 0) / 1024, 1),
        "embedder_cache": "default (4096)" if args.embedder_cache else "disabled (MEMSERVER_EMBEDDER__CACHE_SIZE=0)",
        "ingest": [],
        "sdk_ingest": [],
        "search": {},
    }
    admin = await asyncpg.connect(plain_url(stack.pg.url("postgres")))
    conn = await asyncpg.connect(plain_url(stack.url))
    m = Meters(
        stack, args, project_id, key, admin, conn, StatementStats(admin, "memserver"),
        CpuMeter(server_pid, stack.postmaster_pid()), Profiler(args.profile, server_pid, gil=args.profile_gil),
    )  # fmt: skip
    try:
        await warm_up(m)
        await admin.execute("CHECKPOINT")
        for k, c in enumerate(wl.levels):
            result["ingest"].append(await ingest_level(m, wl, k, c))
        if not args.no_sdk and (py := sdk_python()):
            result |= await sdk_ingest(m, wl, py, sdk_project, sdk_key)
        if args.sizes and args.queries > 0:
            result["pool_embed_s"], pool = embed_pool(wl)
            state = {
                "bulk_rows": 0,
                "id_rng": random.Random(args.seed + 7),
                "t0": datetime.now(UTC) - timedelta(days=30),
            }
            qrng = random.Random(args.seed + 11)  # the peer's search-pair generator
            for size in args.sizes:
                result["search"][str(size)] = await search_size(m, wl, size, pool, state, qrng)
    finally:
        result["peak_rss_mb"] = round((proc_status_kb(server_pid, "VmHWM") or 0) / 1024, 1)
        result["rss_mb_at_end"] = round((proc_status_kb(server_pid, "VmRSS") or 0) / 1024, 1)
        await conn.close()
        await admin.close()
    return result


async def warm_up(m: Meters) -> None:
    """As the peer does: 5 adds (user "warmup") and one search; not measured."""
    assert m.stack.server is not None
    warm = [add_body(f"Warm-up fact number {i}.", "warmup") for i in range(5)]
    await http_run(m.stack.server.url, m.key, "/v3/memories/add/", warm, 1)
    await http_run(
        m.stack.server.url, m.key, "/v3/memories/search/", [search_body("warm-up", "warmup", "hybrid", 10)], 1
    )


async def ingest_level(m: Meters, wl: Workload, k: int, c: int) -> dict[str, Any]:
    """The k-th ingest level over raw HTTP at concurrency c; every add checked, every row counted."""
    jobs = wl.ingest_jobs(k, c)
    log(f"memserver ingest: {len(jobs)} adds at concurrency {c} ...")
    name = f"ingest-c{c}" if c == max(wl.levels) else None
    lat, out, wall, extra = await measured(m, name, "/v3/memories/add/", [add_body(t, u) for t, u in jobs], c)
    bad, errors = check_adds(out, jobs)
    stored = int(
        await m.conn.fetchval(
            "SELECT count(*) FROM memories WHERE project_id = $1 AND user_id LIKE $2",
            m.project_id,
            f"ingest-c{c}-u%",
        )
    )
    r = {
        "concurrency": c,
        "adds": len(jobs),
        "wall_s": round(wall, 3),
        "adds_per_s": round(len(jobs) / wall, 2),
        **latency_summary(lat),
        "errors": len(errors),
        "error_samples": errors[:3],
        "bad_results": bad,
        "rows_stored": stored,
        "all_stored": stored == len(jobs) and not errors and bad == 0,
        **extra,
    }
    log(
        f"  {r['adds_per_s']} adds/s, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
        f"{r['db']['statements_per_op']} statements/add, server CPU {r['cpu']['server_cpu_ms_per_op']} ms/add"
    )
    return r


def check_adds(out: list[tuple[int, bytes]], jobs: list[tuple[str, str]]) -> tuple[int, list[str]]:
    """(adds that did not answer SUCCEEDED with exactly one ADD of their text, non-200 answers)."""
    bad = 0
    errors: list[str] = []
    for (status, body), (text, _) in zip(out, jobs, strict=True):
        if status != 200:
            errors.append(f"{status}: {body[:200].decode(errors='replace')}")
            continue
        res = orjson.loads(body)
        items = res.get("results") or []
        if (
            res.get("status") != "SUCCEEDED"
            or [i.get("event") for i in items] != ["ADD"]
            or items[0].get("memory") != text
        ):
            bad += 1
    return bad, errors


async def sdk_ingest(m: Meters, wl: Workload, py: str, sdk_project: uuid.UUID, sdk_key: str) -> dict[str, Any]:
    """The same adds through the official Python SDK, into a second project (removed afterwards)."""
    assert m.stack.server is not None
    log("memserver ingest through the Python SDK (mem0ai 2.2.1 MemoryClient, threads) ...")
    levels = [(c, wl.ingest_jobs(k, c, prefix="sdk")) for k, c in enumerate(wl.levels)]
    out: dict[str, Any] = {}
    try:
        out["sdk_ingest"] = run_sdk_ingest(py, m.stack.workdir, m.stack.server.url, sdk_key, levels)
        for r in out["sdk_ingest"]:
            c, rate = r["concurrency"], r["adds_per_s"]
            log(f"  SDK c{c}: {rate} adds/s, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")
    except Exception as exc:
        log(f"  SDK ingest failed: {exc}")
        out["sdk_ingest_error"] = str(exc)[-2000:]
    for table in ("memories", "memory_history", "events", "entities"):
        await m.conn.execute(f"DELETE FROM {table} WHERE project_id = $1", sdk_project)
    return out


def embed_pool(wl: Workload) -> tuple[float, tuple[list[str], list[str], list[str]]]:
    """(seconds, (texts, vector literals, hashes)) of the bulk-load pool, embedded once by memserver's embedder."""
    from memserver.pipeline.messages import text_hash
    from memserver.providers.embedder.local import LocalEmbedder
    from memserver.storage.repositories.memories import vector_literal

    pool_texts = wl.pool_texts()
    log(f"embedding a pool of {len(pool_texts)} texts with memserver's local embedder ...")
    t0 = time.perf_counter()
    embedder = LocalEmbedder(cache_dir=MODEL_CACHE)
    vectors = embedder.embed_sync(pool_texts)
    pool_vectors = [vector_literal(v) for v in vectors]
    pool_hashes = [text_hash(t) for t in pool_texts]
    del embedder, vectors
    seconds = round(time.perf_counter() - t0, 1)
    log(f"  {seconds} s")
    return seconds, (pool_texts, pool_vectors, pool_hashes)


async def search_size(
    m: Meters,
    wl: Workload,
    size: int,
    pool: tuple[list[str], list[str], list[str]],
    state: dict[str, Any],
    qrng: random.Random,
) -> dict[str, Any]:
    """Grow the project to `size` memories, then every search mode at every search concurrency."""
    args = m.args
    log(f"loading the memserver project to {size} memories ...")
    load = await bulk_load(m.conn, m.project_id, size, *pool, state, args.per_user, args.bulk_batch)
    t0 = time.perf_counter()
    await m.conn.execute("ANALYZE memories")
    await m.conn.execute("ANALYZE memory_history")
    await m.conn.execute("ANALYZE entities")
    await m.admin.execute("CHECKPOINT")
    load["analyze_s"] = round(time.perf_counter() - t0, 1)
    total = int(await m.conn.fetchval("SELECT count(*) FROM memories WHERE project_id = $1", m.project_id))
    full_users = state["bulk_rows"] // args.per_user
    if full_users == 0:
        candidates = [f"ingest-c{wl.levels[0]}-u{i:04d}" for i in range(args.ingest_users)]
    else:
        candidates = [f"bulk-u{i:05d}" for i in range(full_users)]
    pairs = [(wl.queries[i % len(wl.queries)], qrng.choice(candidates)) for i in range(args.queries)]
    block: dict[str, Any] = {
        "rows": total,
        "rows_in_table": int(await m.conn.fetchval("SELECT count(*) FROM memories")),
        "users_in_project": int(
            await m.conn.fetchval("SELECT count(DISTINCT user_id) FROM memories WHERE project_id = $1", m.project_id)
        ),
        "load": load,
        "search_pairs": [{"query": q, "user_id": u} for q, u in pairs],
        "runs": [],
    }
    for mode in SEARCH_MODES:
        for c in args.search_levels:
            block["runs"].append(await search_run(m, size, total, mode, c, pairs))
    return block


async def search_run(
    m: Meters, size: int, total: int, mode: str, c: int, pairs: list[tuple[str, str]]
) -> dict[str, Any]:
    """--warmup unmeasured searches, then every (query, user) pair once at concurrency c."""
    assert m.stack.server is not None
    args = m.args
    bodies = [search_body(q, u, mode, args.top_k) for q, u in pairs]
    await http_run(m.stack.server.url, m.key, "/v3/memories/search/", bodies[: args.warmup], c)
    log(f"search @{total} {mode}: {len(bodies)} searches at concurrency {c} ...")
    largest = size == max(args.sizes) and c == max(args.search_levels)
    name = f"search-{size}-{mode}-c{c}" if largest else None
    lat, out, wall, extra = await measured(m, name, "/v3/memories/search/", bodies, c)
    hits, errors = [], []
    for (status, body), (_, user) in zip(out, pairs, strict=True):
        if status != 200:
            errors.append(f"{status}: {body[:200].decode(errors='replace')}")
            hits.append(0)
            continue
        res = orjson.loads(body)["results"]
        hits.append(len(res))
        if any(h.get("user_id") != user for h in res):
            errors.append("result of another user returned")
    r = {
        "mode": mode,
        "concurrency": c,
        "searches": len(bodies),
        "top_k": args.top_k,
        "wall_s": round(wall, 3),
        "searches_per_s": round(len(bodies) / wall, 2),
        **latency_summary(lat),
        "mean_hits": round(sum(hits) / len(hits), 2),
        "searches_with_fewer_than_top_k_hits": sum(1 for h in hits if h < args.top_k),
        "searches_with_zero_hits": sum(1 for h in hits if h == 0),
        "errors": len(errors),
        "error_samples": errors[:3],
        **extra,
    }
    log(
        f"  p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, {r['searches_per_s']}/s, "
        f"{r['db']['statements_per_op']} statements/search, DB {r['db']['db_ms_per_op']} ms"
    )
    return r
