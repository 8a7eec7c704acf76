"""The memserver side of the workload: request bodies, and the bulk load of what an add writes."""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import workload as texts
from bench.speed.config import log


class Workload:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.levels = args.levels
        needed = len(self.levels) * args.n + args.pool
        if args.texts_file:
            data = json.loads(Path(args.texts_file).read_text())
            self.texts = [str(t) for t in (data if isinstance(data, list) else data["texts"])]
            queries = [] if isinstance(data, list) else [str(q) for q in data.get("queries", [])]
            self.queries = queries or texts.generate_queries(max(args.queries, 1), args.seed)
        else:
            self.texts = texts.generate_texts(needed, args.seed)
            self.queries = texts.generate_queries(max(args.queries, 1), args.seed)

    def text_at(self, i: int) -> str:
        return self.texts[i % len(self.texts)]

    def ingest_jobs(self, k: int, c: int, prefix: str = "ingest") -> list[tuple[str, str]]:
        """(text, user) of the k-th concurrency level: texts[k*N:(k+1)*N], user ingest-c{c}-u{i % users}."""
        n = self.args.n
        return [(self.text_at(k * n + i), f"{prefix}-c{c}-u{i % self.args.ingest_users:04d}") for i in range(n)]

    def pool_texts(self) -> list[str]:
        base = len(self.levels) * self.args.n
        return [self.text_at(base + i) for i in range(min(self.args.pool, max(self.args.sizes)))]

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps({"seed": self.args.seed, "texts": self.texts, "queries": self.queries}))


def add_body(text: str, user: str) -> bytes:
    return orjson.dumps({"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False})


def search_body(query: str, user: str, mode: str, top_k: int) -> bytes:
    body: dict[str, Any] = {"query": query, "filters": {"user_id": user}, "top_k": top_k}
    if mode != "hybrid":
        body["retrieval"] = mode
    return orjson.dumps(body)


BULK_SQL = """
WITH input AS (
    SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
        AS t(id, user_id, memory, hash, emb, ts)
),
ins AS (
    INSERT INTO memories (id, project_id, user_id, agent_id, app_id, run_id, memory, hash, metadata, categories,
        embedding, immutable, expiration_date, role, actor_id, source, provenance, event_id, created_at, updated_at)
    SELECT i.id, $1, i.user_id, NULL, NULL, NULL, i.memory, i.hash, NULL, NULL, CAST(i.emb AS vector), false,
        NULL, 'user', NULL, 'verbatim', jsonb_build_object('event_id', NULL, 'message_index', 0), NULL, i.ts, i.ts
    FROM input i
    RETURNING id, user_id, memory, created_at
),
hist AS (
    INSERT INTO memory_history (id, project_id, memory_id, event, old_memory, new_memory, input, user_id,
        agent_id, app_id, run_id, categories, metadata, created_at, updated_at)
    SELECT gen_random_uuid(), $1, ins.id, 'ADD', NULL, ins.memory,
        jsonb_build_array(jsonb_build_object('role', 'user', 'content', ins.memory)), ins.user_id,
        NULL, NULL, NULL, NULL, NULL, ins.created_at, ins.created_at
    FROM ins
)
INSERT INTO entities (project_id, type, name)
SELECT DISTINCT $1::uuid, 'user', user_id FROM input
ON CONFLICT DO NOTHING
"""


async def bulk_load(
    conn: asyncpg.Connection,
    project_id: uuid.UUID,
    target: int,
    pool_texts: list[str],
    pool_vectors: list[str],
    pool_hashes: list[str],
    state: dict[str, Any],
    per_user: int,
    batch: int,
) -> dict[str, Any]:
    current = int(await conn.fetchval("SELECT count(*) FROM memories WHERE project_id = $1", project_id))
    need = target - current
    info: dict[str, Any] = {"rows_before": current, "rows_added": max(need, 0)}
    if need <= 0:
        return info
    rng: random.Random = state["id_rng"]
    t0 = time.perf_counter()
    done = 0
    while done < need:
        b = min(batch, need - done)
        ids, users, texts, hashes, vecs, ts = [], [], [], [], [], []
        for _ in range(b):
            j = state["bulk_rows"]
            k = j % len(pool_texts)
            ids.append(uuid.UUID(int=rng.getrandbits(128), version=4))
            users.append(f"bulk-u{j // per_user:05d}")
            texts.append(pool_texts[k])
            hashes.append(pool_hashes[k])
            vecs.append(pool_vectors[k])
            ts.append(state["t0"] + timedelta(milliseconds=j))  # a user's memories: one conversation
            state["bulk_rows"] += 1
        await conn.execute(BULK_SQL, project_id, ids, users, texts, hashes, vecs, ts)
        done += b
        if done % (batch * 10) == 0 or done == need:
            log(f"  bulk {current + done}/{target} rows ({done / (time.perf_counter() - t0):.0f} rows/s)")
    info["load_s"] = round(time.perf_counter() - t0, 1)
    info["rows_per_s"] = round(need / max(info["load_s"], 1e-9), 1)
    return info
