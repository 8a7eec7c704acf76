"""Scale: search and add latency with N memories in one project across many users (issue 13, point 11).

A private Postgres (tuned by `--pg-conf`, defaults below) gets N memories bulk-loaded with COPY
(binary, asyncpg) into one project, `--users` users with N/users memories each: generated sentences
of 8-16 words from a fixed vocabulary (realistic tsvectors) and random unit vectors (latency does not
depend on what the vectors mean). Secondary indexes are dropped for the load and rebuilt afterwards
(timed; the HNSW build dominates), then VACUUM ANALYZE. A real `memserver serve` (embedding cache off)
then answers over HTTP:

- user-scoped search (`filters: {"user_id": <random user>}`), hybrid and dense-only, p50/p95;
- project-wide search (`filters: {"user_id": "*"}`), hybrid and dense-only, p50/p95;
- single-message verbatim adds to random users, p50/p95;
- disk (database, table, each index) and RAM (server RSS, Postgres shared_buffers), also per million.

    .venv/bin/python -m bench.scale --n 1000000 --users 10000 --workdir DIR --pg-conf ...  # the 1M run
    .venv/bin/python -m bench.scale --reuse --workdir DIR ...      # measure again, no load (same DIR)
    .venv/bin/python -m bench.scale --n 20000 --users 200          # a small size, minutes

`--time` (issue 21): a share of the memories (`--periods`, default 0.3) get a one-day event period within the
30 days before they were recorded, and each scope is also searched with pairs, a query alone and the same
query with a time expression (reference_date: the last memory's day), hybrid, interleaved: p50/p95 of both and
the p95 ratio; and, as a control, the query with as many words that name no time (the embedder's cost grows
with the text): the ratio to it is what reading the time costs. Project-wide, the time query also takes
candidates from the event-period GiST index.

    .venv/bin/python -m bench.scale --n 20000 --users 1 --time --queries 200     # one 20k scope (exact scan)
    .venv/bin/python -m bench.scale --n 100000 --users 100 --time --queries 200  # project-wide: GiST branch
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.hybrid_latency import TIME_EXPRESSIONS
from harness import ROOT
from memserver.pipeline.time_expressions import TRIGGERS as TIME_WORDS

DIM = 384
LOAD_START = datetime(2024, 1, 1, tzinfo=UTC)
# Postgres settings for the run (the embedded server's defaults suit a laptop, not 1M rows).
# shared_buffers should hold the HNSW index and the hot part of the table; maintenance_work_mem the
# HNSW graph while it is built (else the build spills and slows down ~10x).
DEFAULT_PG_CONF = [
    "shared_buffers = '1GB'",
    "effective_cache_size = '4GB'",
    "maintenance_work_mem = '1GB'",
    "max_parallel_maintenance_workers = 2",
    "work_mem = '16MB'",
    "max_wal_size = '4GB'",
    "checkpoint_timeout = '30min'",
]
WORDS = (
    "alice bob carol dave erin frank grace heidi ivan judy mallory oscar peggy trent victor walter "
    "austin berlin paris tokyo london denver seattle boston chicago madrid lisbon oslo "
    "moved visited bought cooked painted adopted started finished joined quit loves hates prefers "
    "dog cat guitar piano marathon garden kitchen novel camera bicycle kayak tent laptop coffee tea "
    "sister brother mother father friend colleague neighbour teacher doctor coach manager "
    "yesterday today tomorrow monday friday weekend summer winter spring autumn january july "
    "really quite very often never always sometimes recently finally again also still "
    "the a an to of in on at for with from about after before during and but because"
).split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."


# --time: the queries alone name no time (their pairs add one), so none of these words
_TIMELESS = [w for w in WORDS if w not in TIME_WORDS and w not in ("recently", "finally", "after", "before")]


_PADDING = ("violin", "music", "pebble", "window", "river", "yellow", "engine", "pillow")


def timeless(rng: random.Random, i: int) -> str:
    """A query naming no time, unique by a letters-only tag (a digit would be a date trigger)."""
    tag = "".join(chr(97 + (i // 26**k) % 26) for k in range(3))
    return " ".join(rng.choice(_TIMELESS) for _ in range(rng.randint(8, 16))).capitalize() + f" {tag}."


def unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))], 2)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 2), "p95_ms": pct(values, 95), "n": len(values)}


async def bulk_load(
    dsn: str, project_id: uuid.UUID, n: int, users: int, batch: int, seed: int, periods: float = 0.0
) -> dict[str, Any]:
    import asyncpg
    from pgvector.asyncpg import register_vector

    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memories' AND indexname <> 'memories_pkey'"
    )
    for ix in indexes:
        await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
    t0 = time.perf_counter()
    start = LOAD_START
    cols = ["id", "project_id", "user_id", "memory", "hash", "embedding", "role", "source", "created_at", "updated_at"]
    cols += ["event_start", "event_end"] if periods else []
    done = 0
    while done < n:
        size = min(batch, n - done)
        vecs = unit_vectors(size, nrng)
        records = []
        for j in range(size):
            i = done + j
            text = f"{sentence(rng)} ({i})"  # unique text per memory: no duplicate-hash conflicts
            ts = start + timedelta(seconds=30 * i)
            records.append(
                (
                    uuid.UUID(int=rng.getrandbits(128), version=4),
                    project_id,
                    f"user-{i % users}",
                    text,
                    hashlib.md5(text.encode()).hexdigest(),
                    vecs[j],
                    "user",
                    "verbatim",
                    ts,
                    ts,
                    *(event_day(ts, rng) if periods and rng.random() < periods else (None, None) if periods else ()),
                )
            )
        await conn.copy_records_to_table("memories", records=records, columns=cols)
        done += size
        print(f"  loaded {done}/{n} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    load_s = time.perf_counter() - t0
    built: dict[str, float] = {}
    # maintenance_work_mem comes from the server's configuration (--pg-conf): the HNSW graph must fit in it.
    for ix in indexes:
        t1 = time.perf_counter()
        await conn.execute(ix["indexdef"])
        built[ix["indexname"]] = round(time.perf_counter() - t1, 1)
        print(f"  built {ix['indexname']} in {built[ix['indexname']]}s", file=sys.stderr, flush=True)
    t2 = time.perf_counter()
    await conn.execute("VACUUM ANALYZE memories")
    vacuum_s = time.perf_counter() - t2
    await conn.close()
    return {
        "copy_s": round(load_s, 1),
        "rows_per_s": round(n / load_s),
        "index_build_s": built,
        "vacuum_analyze_s": round(vacuum_s, 1),
    }


def event_day(ts: datetime, rng: random.Random) -> tuple[datetime, datetime]:
    """A one-day event period within the 30 days before `ts` (what "yesterday", "last week" make)."""
    day = datetime.combine((ts - timedelta(days=rng.randrange(30))).date(), datetime.min.time(), tzinfo=UTC)
    return day, day + timedelta(days=1)


def last_day(n: int) -> str:
    """The day of the last loaded memory (bulk_load records one every 30 s from 2024-01-01)."""
    return (LOAD_START + timedelta(seconds=30 * (n - 1))).date().isoformat()


async def sizes(dsn: str, n: int) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    db = await conn.fetchval("SELECT pg_database_size(current_database())")
    table = await conn.fetchval("SELECT pg_table_size('memories')")
    idx = await conn.fetch(
        "SELECT indexname, pg_relation_size(quote_ident(indexname)::regclass) AS bytes "
        "FROM pg_indexes WHERE tablename = 'memories' ORDER BY bytes DESC"
    )
    shared = await conn.fetchval("SHOW shared_buffers")
    await conn.close()
    per_m = 1_000_000 / n
    mb = 1024 * 1024
    indexes = {r["indexname"]: round(r["bytes"] / mb, 1) for r in idx}
    return {
        "database_mb": round(db / mb, 1),
        "memories_table_mb": round(table / mb, 1),
        "memories_indexes_mb": indexes,
        "per_million": {
            "database_gb": round(db * per_m / 1024**3, 2),
            "table_gb": round(table * per_m / 1024**3, 2),
            "indexes_gb": round(sum(r["bytes"] for r in idx) * per_m / 1024**3, 2),
            "hnsw_gb": round(sum(r["bytes"] for r in idx if "hnsw" in r["indexname"]) * per_m / 1024**3, 2),
        },
        "shared_buffers": shared,
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def measure(
    url: str, key: str, users: int, queries: int, adds: int, seed: int, reference: str | None = None
) -> dict[str, Any]:
    """`reference` (--time): also the paired searches with and without a time expression, at that "now"."""
    rng = random.Random(seed + 7)
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=120) as c:

        async def search(query: str, user: str, mode: str) -> float:
            body: dict[str, Any] = {"query": query, "filters": {"user_id": user}, "top_k": 10}
            if reference is not None:
                body["reference_date"] = reference
            if mode == "dense":
                body["retrieval"] = "semantic"
            t0 = time.perf_counter()
            r = await c.post("/v3/memories/search/", json=body)
            dt = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            return dt

        for i in range(10):  # warm-up (unmeasured), unique texts
            await search(f"warm up {i} {sentence(rng)}", f"user-{rng.randrange(users)}", "hybrid")
            await search(f"warm up {i} {sentence(rng)}", "*", "hybrid")
        for scope in ("user", "project"):
            lat: dict[str, list[float]] = {"hybrid": [], "dense": []}
            for i in range(queries):
                user = f"user-{rng.randrange(users)}" if scope == "user" else "*"
                for mode in ("hybrid", "dense") if i % 2 == 0 else ("dense", "hybrid"):
                    lat[mode].append(await search(f"{sentence(rng)} {i}", user, mode))
            out[f"search_{scope}"] = {mode: summary(v) for mode, v in lat.items()}
            if reference is None:
                continue
            paired: dict[str, list[float]] = {"plain": [], "with time": [], "same length": []}
            for i in range(queries):
                user = f"user-{rng.randrange(users)}" if scope == "user" else "*"
                q = timeless(rng, i)
                expr = TIME_EXPRESSIONS[i % len(TIME_EXPRESSIONS)]
                # the control: as many words, none a time and none in the corpus (the embedder's cost grows
                # with the text, and corpus words would add full-text work the time words do not)
                padded = f"{q} {' '.join(_PADDING[(i + k) % len(_PADDING)] for k in range(len(expr.split())))}"
                trio = [("plain", q), ("with time", f"{q} {expr}"), ("same length", padded)]
                for name, query in trio[i % 3 :] + trio[: i % 3]:
                    paired[name].append(await search(query, user, "hybrid"))
            row: dict[str, Any] = {name: summary(v) for name, v in paired.items()}
            row["p95_ratio"] = round(row["with time"]["p95_ms"] / row["plain"]["p95_ms"], 3)
            row["p95_ratio_same_length"] = round(row["with time"]["p95_ms"] / row["same length"]["p95_ms"], 3)
            out[f"search_{scope}_time"] = row
        add_lat = []
        for i in range(adds):
            body = {
                "messages": [{"role": "user", "content": f"{sentence(rng)} added {i} {time.time_ns()}"}],
                "user_id": f"user-{rng.randrange(users)}",
                "infer": False,
            }
            t0 = time.perf_counter()
            r = await c.post("/v3/memories/add/", json=body)
            add_lat.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
        out["add"] = summary(add_lat)
    return out


async def reuse_tenant(url: str) -> tuple[uuid.UUID, str]:
    """The loaded project of a previous run, and a new key for it."""
    import asyncpg

    from memserver.services import admin
    from memserver.storage.db import Database

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await conn.fetchrow(
            "SELECT o.name AS org, p.name AS project, p.id FROM projects p JOIN orgs o ON o.id = p.org_id "
            "WHERE o.name = 'bench' AND p.name LIKE 'scale-%'"
        )
    finally:
        await conn.close()
    if row is None:
        raise SystemExit("--reuse: no project of a previous bench.scale run in this database")
    db = Database(url)
    try:
        _, key = await admin.create_key(db, row["org"], row["project"], "scale-reuse", admin.DEFAULT_EMAIL)
        return row["id"], key
    finally:
        await db.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000, help="memories in the project")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=50_000, help="rows per COPY")
    p.add_argument("--queries", type=int, default=200, help="searches per scope and mode")
    p.add_argument("--adds", type=int, default=200)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--exact-scan-limit",
        type=int,
        default=None,
        help="MEMSERVER_SEARCH__EXACT_SCAN_LIMIT for the server (default: memserver's, 20000)",
    )
    p.add_argument("--pg-conf", action="append", default=None, help="postgresql.conf line (repeatable)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the database here (default: a temp dir)")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="measure again on the database a previous run left in --workdir (no load; its load figures are "
        "copied from the previous --out)",
    )
    p.add_argument("--time", action="store_true", help="event periods, and searches with a time expression")
    p.add_argument("--periods", type=float, default=0.3, help="--time: the share of memories with a period")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = p.parse_args()

    from harness.server import free_port, served
    from harness.tenants import new_tenant
    from memserver.embedded_postgres import EmbeddedPostgres
    from memserver.storage import migrate

    if args.reuse and (args.workdir is None or not (args.workdir / "pg").exists()):
        p.error("--reuse needs the --workdir of a previous run")
    load_start = os.getloadavg()
    tmp = tempfile.TemporaryDirectory(prefix="memserver-scale-", dir="/tmp") if args.workdir is None else None
    work = Path(tmp.name) if tmp else args.workdir
    os.chmod(work, 0o755)
    pg = EmbeddedPostgres(work / "pg", port=free_port(), extra_conf=args.pg_conf or DEFAULT_PG_CONF)
    pg.start()
    try:
        url = pg.url()
        if args.reuse:
            project_id, key = asyncio.run(reuse_tenant(url))
            load = {**json.loads(args.out.read_text())["load"], "reused": True} if args.out.exists() else {}
        else:
            migrate.upgrade(url, DIM)
            project_id, key = asyncio.run(new_tenant(url, "bench", f"scale-{time.time_ns()}"))
            dsn = url.replace("postgresql+asyncpg://", "postgresql://")
            print(f"bulk loading {args.n} memories for {args.users} users", file=sys.stderr)
            periods = args.periods if args.time else 0.0
            load = asyncio.run(bulk_load(dsn, project_id, args.n, args.users, args.batch, args.seed, periods))
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        env = {"MEMSERVER_EMBEDDER__CACHE_SIZE": "0"}
        if args.exact_scan_limit is not None:
            env["MEMSERVER_SEARCH__EXACT_SCAN_LIMIT"] = str(args.exact_scan_limit)
        with served(url, work / "memserver.log", **env) as server:
            rss_before = rss_mb(server.proc.pid)
            reference = last_day(args.n) if args.time else None
            result = asyncio.run(measure(server.url, key, args.users, args.queries, args.adds, args.seed, reference))
            result.update(
                n=args.n,
                users=args.users,
                load=load,
                sizes=asyncio.run(sizes(dsn, args.n)),
                server_rss_mb={"after_start": rss_before, "after_run": rss_mb(server.proc.pid)},
                pg_conf=args.pg_conf or DEFAULT_PG_CONF,
                exact_scan_limit=args.exact_scan_limit or "default (20000)",
                load_avg_start=load_start,
                load_avg_end=os.getloadavg(),
                when=datetime.now(UTC).isoformat(timespec="seconds"),
            )
    finally:
        pg.stop()
        if tmp:
            tmp.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(
        f"{args.n} memories, {args.users} users; COPY {load['rows_per_s']} rows/s; index builds {load['index_build_s']}"
    )
    print(f"{'':<22} {'hybrid p50':>10} {'p95':>8} {'dense p50':>10} {'p95':>8}")
    for scope in ("user", "project"):
        h, d = result[f"search_{scope}"]["hybrid"], result[f"search_{scope}"]["dense"]
        print(
            f"{'search ' + scope + ' scope':<22} {h['p50_ms']:>10} {h['p95_ms']:>8} {d['p50_ms']:>10} {d['p95_ms']:>8}"
        )
    for scope in ("user", "project"):
        if f"search_{scope}_time" in result:
            t = result[f"search_{scope}_time"]
            print(
                f"{'time ' + scope + ' scope':<22} plain p50/p95 {t['plain']['p50_ms']}/{t['plain']['p95_ms']}, "
                f"with time {t['with time']['p50_ms']}/{t['with time']['p95_ms']}, p95 ratio {t['p95_ratio']}; "
                f"same length {t['same length']['p50_ms']}/{t['same length']['p95_ms']}, "
                f"p95 ratio {t['p95_ratio_same_length']}"
            )
    print(f"add (verbatim, 1 message) p50 {result['add']['p50_ms']} ms, p95 {result['add']['p95_ms']} ms")
    s = result["sizes"]
    print(f"disk: database {s['database_mb']} MB (per million: {s['per_million']})")
    print(f"server RSS {result['server_rss_mb']} MB; shared_buffers {s['shared_buffers']}; JSON: {args.out}")


if __name__ == "__main__":
    main()
