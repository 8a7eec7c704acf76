"""Graph memory costs: graph search latency at 100k relations per project (Postgres store), and what an add pays
for enable_graph with an instant fake LLM.

    .venv/bin/python -m bench.graph                      # 100k relations, 200 adds each way
    .venv/bin/python -m bench.graph --relations 20000    # smaller
    .venv/bin/python -m bench.graph --quick              # smoke size (CI: does it run end to end)

1. **search**: one project, one user scope holding `--relations` relations among `--relations / 5` entities
   (the worst case for a search: every relation in the scope the query filters on), bulk-loaded with COPY
   (entity vectors are deterministic pseudo-random unit vectors, so no embedder runs while loading), then
   `PostgresGraphStore.search` (the statement v1/v2 search with enable_graph runs) for queries that name an
   entity ("Where does <name> work?") and for queries that name none (only the HNSW path can answer).
   The query vector is given (the server embeds it once per search, shared with the memory search).
   Also `GraphReads.memory_scores`, the walk of graph-aware hybrid search (MEMSERVER_SEARCH__GRAPH_WEIGHT > 0;
   2 hops, 20 relations per entity), for the queries that name an entity ("graph-aware walk").
2. **add**: a real `memserver serve` with the instant fake OpenAI server (echo extractor), `--adds` v1 adds
   (async_mode false, so the HTTP latency is the whole add) with enable_graph off and on, interleaved, each in
   its own user; every message states one relation ("Person7 works at Company3."). Reported: latency p50/p95
   and the prompt tokens the fake LLM counted, per add, off versus on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
from pgvector.asyncpg import register_vector
from tests.fakes.openai_server import FakeOpenAI, fake_embedding, running

from harness.postgres import PostgresRun, plain_url
from harness.server import served
from harness.stats import latency_summary
from harness.tenants import new_tenant
from memserver.domain.relations import name_key
from memserver.services.graph import SEARCH_MIN_SIMILARITY, query_grams
from memserver.storage.db import Database
from memserver.storage.repositories.graph_writes import PostgresGraphStore

DIM = 384
RELATIONSHIPS = [
    "works_at", "lives_in", "friend_of", "sister_of", "likes", "visited", "owns", "studied_at", "manages",
    "plays", "member_of", "married_to", "born_in", "teaches", "reads", "wrote", "moved_to", "knows",
]  # fmt: skip
FIRST = ["Alice", "Bruno", "Chen", "Dara", "Eli", "Farah", "Goran", "Hana", "Ivo", "Jade", "Kofi", "Lena"]
LAST = ["Silva", "Novak", "Okafor", "Berg", "Tanaka", "Moreau", "Rossi", "Kaur", "Hughes", "Ivanova"]


def log(msg: str) -> None:
    sys.stderr.write(f"[bench.graph {datetime.now(UTC):%H:%M:%S}] {msg}\n")
    sys.stderr.flush()


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def entity_name(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]} {i}"


# ----------------------------------------------------------------------------------------------
# 1. search latency at scale
# ----------------------------------------------------------------------------------------------
async def bulk_load(url: str, project_id: uuid.UUID, user: str, n_relations: int, seed: int) -> dict[str, Any]:
    """COPY the entities and relations of one user scope; returns what was loaded and how long it took."""
    rng = random.Random(seed)
    n_nodes = max(10, n_relations // 5)
    conn = await asyncpg.connect(plain_url(url))
    await register_vector(conn)
    try:
        t0 = time.perf_counter()
        nodes = [
            (project_id, user, entity_name(i), name_key(entity_name(i)), "person" if i % 3 else "place",
             np.asarray(fake_embedding(entity_name(i), DIM), dtype=np.float32))
            for i in range(n_nodes)
        ]  # fmt: skip
        await conn.copy_records_to_table(
            "graph_nodes", records=nodes, columns=["project_id", "user_id", "name", "key", "type", "embedding"]
        )
        rows = await conn.fetch("SELECT id, key FROM graph_nodes WHERE project_id = $1", project_id)
        ids = {r["key"]: r["id"] for r in rows}
        node_id = [ids[name_key(entity_name(i))] for i in range(n_nodes)]
        t_nodes = time.perf_counter() - t0
        now = datetime.now(UTC)
        rels = []
        for _ in range(n_relations):
            s, t = rng.randrange(n_nodes), rng.randrange(n_nodes)
            if s == t:
                t = (t + 1) % n_nodes
            rels.append((uuid.uuid4(), project_id, user, node_id[s], rng.choice(RELATIONSHIPS), node_id[t], now, now))
        t1 = time.perf_counter()
        await conn.copy_records_to_table(
            "graph_relations",
            records=rels,
            columns=["id", "project_id", "user_id", "source_id", "relationship", "target_id", "valid_at", "created_at"],
        )
        t_rel = time.perf_counter() - t1
        await conn.execute("ANALYZE graph_nodes")
        await conn.execute("ANALYZE graph_relations")
        return {
            "entities": n_nodes,
            "relations": n_relations,
            "load_entities_s": round(t_nodes, 1),
            "load_relations_s": round(t_rel, 1),
        }
    finally:
        await conn.close()


async def search_latency(url: str, project_id: uuid.UUID, user: str, n_nodes: int, queries: int) -> dict[str, Any]:
    """p50/p95 of the graph search statement for queries naming an entity, and for queries naming none."""
    rng = random.Random(7)
    db = Database(url)
    out: dict[str, Any] = {}
    try:
        for kind in ("names an entity", "names no entity", "graph-aware walk"):
            lat: list[float] = []
            found: list[int] = []
            for q in range(queries + 10):  # the first 10 warm the caches and plans
                if kind != "names no entity":
                    text = f"Where does {entity_name(rng.randrange(n_nodes))} work?"
                else:
                    text = f"what happened on the trip number {q}?"
                vec = np.asarray(fake_embedding(text, DIM), dtype=np.float32)
                grams = [*query_grams(text), text]
                t0 = time.perf_counter()
                async with db.connect() as conn:
                    if kind == "graph-aware walk":  # the bulk-loaded relations carry no memory: count the walk
                        rows = await walk(conn, project_id, user, text)
                    else:
                        rows = await PostgresGraphStore(conn).search(
                            project_id, {"user_id": user}, grams, vec, limit=10, min_similarity=SEARCH_MIN_SIMILARITY
                        )
                if q >= 10:
                    lat.append(time.perf_counter() - t0)
                    found.append(len(rows))
            out[kind] = {**latency_summary(lat), "queries": len(lat), "mean_relations": statistics.mean(found)}
    finally:
        await db.dispose()
    return out


async def walk(conn: Any, project_id: uuid.UUID, user: str, text: str) -> list[Any]:
    """The graph-aware search statement, as search runs it (the scores are empty: the relations carry no memory)."""
    scores = await PostgresGraphStore(conn).memory_scores(
        project_id, {"user_id": user}, query_grams(text), text.split(), hops=2, fanout=20, hop_decay=0.5
    )
    return list(scores)


# ----------------------------------------------------------------------------------------------
# 2. the cost of enable_graph on an add
# ----------------------------------------------------------------------------------------------
def add_cost(url: str, key: str, fake: FakeOpenAI, adds: int) -> dict[str, Any]:
    lat: dict[bool, list[float]] = {False: [], True: []}
    tokens: dict[bool, list[int]] = {False: [], True: []}
    with httpx.Client(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=60) as client:
        for i in range(adds * 2 + 10):
            graph = i % 2 == 1
            text = f"Person{i} works at Company{i % 17}."
            n_before = len(fake.chat_requests())
            t0 = time.perf_counter()
            r = client.post(
                "/v1/memories/",
                json={
                    "messages": [{"role": "user", "content": text}],
                    "user_id": f"u{i}",
                    "async_mode": False,
                    "output_format": "v1.1",
                    "enable_graph": graph,
                },
            )
            elapsed = time.perf_counter() - t0
            r.raise_for_status()
            if graph:
                assert r.json()["relations"]["added_entities"], r.text
            if i >= 10:  # warm-up adds are not counted
                lat[graph].append(elapsed)
                body = fake.chat_requests()[n_before]["body"]
                tokens[graph].append(sum(len(str(m.get("content")).split()) for m in body["messages"]))
    off, on = latency_summary(lat[False]), latency_summary(lat[True])
    return {
        "adds_each": adds,
        "off": off,
        "on": on,
        "added_p50_ms": round(on["p50_ms"] - off["p50_ms"], 2),
        "added_mean_ms": round(on["mean_ms"] - off["mean_ms"], 2),
        "prompt_words_off": statistics.mean(tokens[False]),
        "prompt_words_on": statistics.mean(tokens[True]),
        "llm_calls_per_add_on": 1,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--relations", type=int, default=100_000, help="relations in the searched scope")
    p.add_argument("--queries", type=int, default=200, help="timed searches of each kind")
    p.add_argument("--adds", type=int, default=200, help="timed adds with graph off, and as many on")
    p.add_argument("--quick", action="store_true", help="smoke size: 5k relations, 50 queries, 30 adds")
    p.add_argument("--out", type=Path, default=Path("bench/results/graph.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.relations, args.queries, args.adds = 5_000, 50, 30
    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "loadavg_at_start": loadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    with PostgresRun("memserver-bench-graph-") as run:
        url = run.migrate()
        project_id, key = asyncio.run(new_tenant(url, "bench", "graph"))
        log(f"loading {args.relations} relations into one user scope")
        result["load"] = asyncio.run(bulk_load(url, project_id, "bench-user", args.relations, seed=1))
        log(f"loaded: {result['load']}")
        result["search"] = asyncio.run(
            search_latency(url, project_id, "bench-user", result["load"]["entities"], args.queries)
        )
        log(f"search: {result['search']}")
        log_file = run.workdir / "memserver.log"
        with running(FakeOpenAI(echo=True)) as fake, served(url, log_file, MEMSERVER_LLM__BASE_URL=fake.url) as server:
            result["add"] = add_cost(server.url, key, fake, args.adds)
        log(f"add: {result['add']}")
    result["loadavg_at_end"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print_table(result)


def print_table(r: dict[str, Any]) -> None:
    s, a = r["search"], r["add"]
    lines = [
        f"graph search, {r['load']['relations']} relations / {r['load']['entities']} entities in one scope:",
        *(f"  {kind:18} p50 {v['p50_ms']:7.2f} ms  p95 {v['p95_ms']:7.2f} ms  ({v['queries']} queries, "
          f"{v['mean_relations']:.1f} relations each)" for kind, v in s.items()),
        f"add with an instant fake LLM ({a['adds_each']} each, v1 async_mode=false):",
        f"  graph off  p50 {a['off']['p50_ms']:7.2f} ms  p95 {a['off']['p95_ms']:7.2f} ms",
        f"  graph on   p50 {a['on']['p50_ms']:7.2f} ms  p95 {a['on']['p95_ms']:7.2f} ms",
        f"  added      p50 {a['added_p50_ms']:+.2f} ms, mean {a['added_mean_ms']:+.2f} ms; LLM calls per add: 1; "
        f"prompt words {a['prompt_words_off']:.0f} -> {a['prompt_words_on']:.0f}",
        f"load average {r['loadavg_at_start']} -> {r['loadavg_at_end']}",
    ]  # fmt: skip
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
