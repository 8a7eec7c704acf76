"""Dream synthesis: what the scheduler's tick costs with N memories in a project that has Synthesis on.

A private Postgres (bench.scale's settings) gets N user-scoped memories of `--users` users bulk-loaded with
bench.scale's loader (COPY), all past the project's forward boundary (Synthesis is turned on first). The HNSW
index is left out (the tick never uses it; its build would dominate the load). Then `services.dream.tick`, the
statement sequence every process's sweep runs, is timed in process (no HTTP: the tick never is):

- `catch_up`: the ticks after the scheduler's watermark was left at the start, i.e. every memory is new to it
  (the worst case: the scheduler was off, `MEMSERVER_DREAM__ENABLED=false`, while all of them arrived): each
  reads at most 2 x `MAX_SCAN_SEQS` memories, so catching up takes N / 250k + 1 ticks;
- `backlog`: every user is due (touched, never run) and the project has its maximum of open runs, so each
  tick finds candidates and queues nothing (it counts each candidate's memories up to the minimum);
- `idle`: every user has run, nothing new: a tick claims the interval and reads nothing;
- `new_<k>`: k memories added (COPY) to random users since the tick before, everyone else run: the two
  ticks that read them;
- `naive_group_by`: for comparison, the one statement that counts every user's eligible memories from
  scratch (what a scheduler without a watermark would run every tick).

It also times the add path's single insert statement (`MemoryWriter.insert_new`, one memory) with and
without the BRIN index on `seq` that the tick reads through (`add_insert_*`).

    .venv/bin/python -m bench.dream --n 1000000 --users 10000   # about 15 minutes on 2 cores
    .venv/bin/python -m bench.dream --n 100000 --users 1000     # a few minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.scale import DEFAULT_PG_CONF, DIM, bulk_load, pct, sentence, unit_vectors
from harness import ROOT

CURRENT = "coalesce(pg_sequence_last_value(pg_get_serial_sequence('memories', 'seq')), 0)"


def stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 2), "p95_ms": pct(values, 95), "n": len(values)}


async def timed(fn: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def run(url: str, project_id: uuid.UUID, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from memserver.config import DreamSettings
    from memserver.services import dream
    from memserver.storage.db import Database

    settings = DreamSettings(tick_s=1.0, max_users_per_tick=100, max_open_per_project=20)
    db = Database(url)
    out: dict[str, Any] = {}

    async def sql(statement: str, **params: Any) -> None:
        async with db.transaction() as conn:
            await conn.execute(text(statement), params)

    async def tick() -> int:
        await sql("UPDATE dream_scan SET ticked_at = '-infinity'")  # the interval has passed
        return len(await dream.tick(db, settings))

    async def reset_scan() -> None:
        await sql("UPDATE dream_scan SET scanned_seq = 0, seen_seq = 0")

    try:
        await reset_scan()
        catch_up = []
        while True:
            catch_up += await timed(tick, 1)
            async with db.connect() as conn:
                behind = (await conn.execute(text(f"SELECT scanned_seq < {CURRENT} FROM dream_scan"))).scalar_one()
            if not behind:
                break
        out["catch_up"] = {**stats(catch_up), "max_ms": round(max(catch_up), 1)}
        # backlog: every user due, the project at its maximum of open runs (queued by tick 1 and 2)
        await sql("UPDATE dream_state SET checked_seq = 0")
        out["backlog"] = stats(await timed(tick, args.repeat))
        out["backlog"]["due_users"] = args.users
        # idle: everyone has run, nothing new
        await sql("DELETE FROM events WHERE event_type = 'DREAM'")
        await sql("UPDATE dream_state SET last_seq = touched_seq, next_due_at = now() + interval '7 days'")
        await tick()
        await tick()  # the watermark is past everything now
        out["idle"] = stats(await timed(tick, args.repeat))
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        for k in args.new:
            lat = []
            for r in range(max(1, args.repeat // 5)):
                await copy_new(dsn, project_id, k, args.users, seed=args.seed + 100 * k + r)
                lat += await timed(tick, 2)  # the new memories are read by this tick and the next
                await sql("DELETE FROM events WHERE event_type = 'DREAM'")
                await sql("UPDATE dream_state SET last_seq = touched_seq, next_due_at = now() + interval '7 days'")
            out[f"new_{k}"] = stats(lat)
        naive = (
            "SELECT m.project_id, m.user_id, count(*) AS n, max(m.seq) FROM memories m "
            "WHERE m.project_id = :p AND m.user_id IS NOT NULL AND m.agent_id IS NULL AND m.app_id IS NULL "
            "AND m.run_id IS NULL AND m.source <> 'synthesized' AND m.replaced_by IS NULL AND m.seq > 0 "
            "GROUP BY 1, 2 HAVING count(*) >= 20"
        )

        async def group_by() -> None:
            async with db.connect() as conn:
                (await conn.execute(text(naive), {"p": project_id})).all()

        out["naive_group_by"] = stats(await timed(group_by, max(3, args.repeat // 5)))
        # interleaved rounds (the machine's load moves by tens of percent between minutes)
        with_brin: list[float] = []
        without: list[float] = []
        for r in range(args.rounds):
            with_brin += await add_latency(db, project_id, args, round_=2 * r)
            await sql("DROP INDEX ix_memories_seq_brin")
            without += await add_latency(db, project_id, args, round_=2 * r + 1)
            await sql("CREATE INDEX ix_memories_seq_brin ON memories USING brin (seq)")
        out["add_insert_with_brin"], out["add_insert_without_brin"] = stats(with_brin), stats(without)
    finally:
        await db.dispose()
    return out


async def copy_new(dsn: str, project_id: uuid.UUID, k: int, users: int, seed: int) -> None:
    import asyncpg
    from pgvector.asyncpg import register_vector

    rng = random.Random(seed)
    vecs = unit_vectors(k, np.random.default_rng(seed))
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    try:
        records = []
        for j in range(k):
            t = f"{sentence(rng)} (new {seed}-{j})"
            records.append(
                (
                    uuid.uuid4(),
                    project_id,
                    f"user-{rng.randrange(users)}",
                    t,
                    uuid.uuid4().hex,
                    vecs[j],
                    "user",
                    "verbatim",
                    now,
                    now,
                )
            )
        cols = [
            "id",
            "project_id",
            "user_id",
            "memory",
            "hash",
            "embedding",
            "role",
            "source",
            "created_at",
            "updated_at",
        ]
        await conn.copy_records_to_table("memories", records=records, columns=cols)
    finally:
        await conn.close()


async def add_latency(db: Any, project_id: uuid.UUID, args: argparse.Namespace, round_: int) -> list[float]:
    """The add path's insert statement, one memory per call (the write path of a verbatim add)."""
    from memserver.domain.changes import AddDefaults, NewMemory
    from memserver.domain.scope import Scope
    from memserver.storage.repositories.memory_writes import MemoryWriter

    rng = random.Random(args.seed + 1 + round_)
    vecs = unit_vectors(args.adds, np.random.default_rng(args.seed + 1 + round_))
    lat = []
    for i in range(args.adds):
        t = f"{sentence(rng)} (added {i} {time.time_ns()})"
        item = NewMemory(
            text=t, hash=uuid.uuid4().hex, scope=Scope(user_id=f"user-{rng.randrange(args.users)}"), embedding=vecs[i]
        )
        t0 = time.perf_counter()
        async with db.transaction() as conn:
            await MemoryWriter(conn).insert_new(project_id, [item], AddDefaults(), event_id=uuid.uuid4())
        lat.append((time.perf_counter() - t0) * 1000)
    return lat[5:]  # the first few warm the connection and the statement cache


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000, help="memories in the project")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=50_000, help="rows per COPY")
    p.add_argument("--repeat", type=int, default=20, help="ticks per measured state")
    p.add_argument("--new", type=int, action="append", default=None, help="new memories between ticks (repeatable)")
    p.add_argument("--adds", type=int, default=100, help="single-memory inserts per round, with and without BRIN")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of inserts with and without BRIN")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--workdir", type=Path, default=None, help="keep the database here (default: a temp dir)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dream.json")
    args = p.parse_args()
    args.new = args.new or [1_000, 10_000]

    from harness.server import free_port
    from harness.tenants import new_tenant
    from memserver.embedded_postgres import EmbeddedPostgres
    from memserver.storage import migrate

    load_start = os.getloadavg()
    tmp = tempfile.TemporaryDirectory(prefix="memserver-dream-", dir="/tmp") if args.workdir is None else None
    work = Path(tmp.name) if tmp else args.workdir
    os.chmod(work, 0o755)
    pg = EmbeddedPostgres(work / "pg", port=free_port(), extra_conf=DEFAULT_PG_CONF)
    pg.start()
    try:
        url = pg.url()
        migrate.upgrade(url, DIM)
        project_id, _ = asyncio.run(new_tenant(url, "bench", f"dream-{time.time_ns()}"))
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        asyncio.run(prepare(dsn, project_id))
        print(f"bulk loading {args.n} memories for {args.users} users", file=sys.stderr)
        load = asyncio.run(bulk_load(dsn, project_id, args.n, args.users, args.batch, args.seed))
        result = asyncio.run(run(url, project_id, args))
        result.update(
            n=args.n,
            users=args.users,
            load=load,
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
    load_avg = f"{result['load_avg_start'][0]:.1f} -> {result['load_avg_end'][0]:.1f}"
    print(f"{args.n} memories, {args.users} users (load average {load_avg})")
    for key in (
        "catch_up",
        "idle",
        "backlog",
        *(f"new_{k}" for k in args.new),
        "naive_group_by",
        "add_insert_with_brin",
        "add_insert_without_brin",
    ):
        print(f"{key:<26} p50 {result[key]['p50_ms']:>9} ms   p95 {result[key]['p95_ms']:>9} ms")


async def prepare(dsn: str, project_id: uuid.UUID) -> None:
    """Synthesis on from the start (boundary 0: every loaded memory is eligible); no HNSW index (not read)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE projects SET settings = settings || jsonb_build_object('dream', "
            "jsonb_build_object('reflection_enabled', true, 'boundary_seq', 0)) WHERE id = $1",
            project_id,
        )
        await conn.execute("DROP INDEX ix_memories_embedding_hnsw")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
