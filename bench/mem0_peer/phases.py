"""The peer's measured phases: verbatim ingest, bulk load, search, and the vector stage's recall."""

from __future__ import annotations

import argparse
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from bench.mem0_peer.common import log
from bench.mem0_peer.dbstats import PsycopgTrace, ServerStats, per_op
from bench.mem0_peer.store import count_rows, exact_neighbours, mem0_payload
from harness.stats import latency_summary


def run_ingest(
    memory: Any,
    url: str,
    texts: list[str],
    concurrency: int,
    users: int,
    trace: PsycopgTrace,
    stats: ServerStats | None,
    raw: bool = False,
) -> dict[str, Any]:
    tag = f"ingest-c{concurrency}"
    jobs = [(i, t, f"{tag}-u{i % users:04d}") for i, t in enumerate(texts)]
    latencies: list[float] = [0.0] * len(jobs)
    results: list[Any] = [None] * len(jobs)
    errors: list[str] = []

    def one(job: tuple[int, str, str]) -> None:
        i, text, user = job
        t0 = time.perf_counter()
        try:
            results[i] = memory.add([{"role": "user", "content": text}], user_id=user, infer=False)
        except Exception as exc:  # recorded, reported as a thread-safety / correctness failure
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies[i] = time.perf_counter() - t0

    sv0 = stats.snapshot() if stats else None
    tr0 = trace.snapshot()
    t_start = time.perf_counter()
    if concurrency == 1:
        for job in jobs:
            one(job)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, jobs))
    wall = time.perf_counter() - t_start
    tr1 = trace.snapshot()
    sv1 = stats.snapshot() if stats else None

    # Correctness: every add returned exactly one ADD with its text, and the rows are in the table.
    returned = 0
    bad = 0
    for i, res in enumerate(results):
        if not res or len(res.get("results", [])) != 1:
            bad += 1
            continue
        item = res["results"][0]
        returned += 1
        if item.get("event") != "ADD" or item.get("memory") != jobs[i][1]:
            bad += 1
    stored = count_rows(url, memory.collection_name, "WHERE payload->>'user_id' LIKE %s", (f"{tag}-u%",))
    n = len(jobs)
    out: dict[str, Any] = {
        "concurrency": concurrency,
        "adds": n,
        "users": users,
        "wall_s": round(wall, 3),
        "adds_per_s": round(n / wall, 2),
        **latency_summary(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "bad_results": bad,
        "rows_stored": stored,
        "all_stored": stored == n and not errors and bad == 0,
        "latencies_ms": [round(x * 1000, 3) for x in latencies] if raw else None,
        "db": per_op(tr1 - tr0, ServerStats.delta(sv0, sv1) if stats else None, n) if trace.installed else None,
    }
    return out


def bulk_load(
    memory: Any,
    args: argparse.Namespace,
    target: int,
    pool_texts: list[str],
    pool_vectors: list[list[float]],
    state: dict[str, Any],
) -> dict[str, Any]:
    """Grow the collection to ``target`` rows through mem0's own vector store object (PGVector.insert)."""
    from mem0.utils.lemmatization import lemmatize_for_bm25

    current = count_rows(args.database_url, args.collection)
    need = target - current
    info: dict[str, Any] = {"rows_before": current, "rows_added": max(need, 0)}
    if need <= 0:
        log(f"collection already has {current} rows >= {target}: no bulk load")
        return info
    lemma_cache: dict[str, str] = {}

    def lemmatize(text: str) -> str:
        if text not in lemma_cache:
            lemma_cache[text] = lemmatize_for_bm25(text)
        return lemma_cache[text]

    rng: random.Random = state["id_rng"]
    t0 = time.perf_counter()
    done = 0
    while done < need:
        batch = min(args.bulk_batch, need - done)
        vectors, payloads, ids = [], [], []
        created_at = datetime.now(UTC).isoformat()
        for _ in range(batch):
            j = state["bulk_rows"]
            user = f"bulk-u{j // args.per_user:05d}"
            k = j % len(pool_texts)
            vectors.append(pool_vectors[k])
            payloads.append(mem0_payload(user, pool_texts[k], created_at, lemmatize))
            ids.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            state["bulk_rows"] += 1
        memory.vector_store.insert(vectors=vectors, payloads=payloads, ids=ids)
        done += batch
        if done % (args.bulk_batch * 20) == 0 or done == need:
            rate = done / (time.perf_counter() - t0)
            log(f"  bulk {current + done}/{target} rows ({rate:.0f} rows/s)")
    info["load_s"] = round(time.perf_counter() - t0, 1)
    info["rows_per_s"] = round(need / info["load_s"], 1) if info["load_s"] else None
    return info


def run_search(
    memory: Any,
    args: argparse.Namespace,
    queries: list[tuple[str, str]],
    concurrency: int,
    trace: PsycopgTrace,
    stats: ServerStats | None,
) -> dict[str, Any]:
    latencies: list[float] = [0.0] * len(queries)
    hits: list[int] = [0] * len(queries)
    errors: list[str] = []

    def one(i: int) -> None:
        query, user = queries[i]
        t0 = time.perf_counter()
        try:
            kwargs = {} if args.threshold is None else {"threshold": args.threshold}
            res = memory.search(query, filters={"user_id": user}, top_k=args.top_k, **kwargs)
            hits[i] = len(res["results"])
            if any(r.get("user_id") != user for r in res["results"]):
                errors.append("result of another user returned")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies[i] = time.perf_counter() - t0

    warm = min(args.warmup, len(queries))
    for i in range(warm):  # warm caches (the same pairs are measured again below)
        one(i)
    sv0 = stats.snapshot() if stats else None
    tr0 = trace.snapshot()
    t_start = time.perf_counter()
    if concurrency == 1:
        for i in range(len(queries)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, range(len(queries))))
    wall = time.perf_counter() - t_start
    tr1 = trace.snapshot()
    sv1 = stats.snapshot() if stats else None
    n = len(queries)
    return {
        "concurrency": concurrency,
        "searches": n,
        "top_k": args.top_k,
        "wall_s": round(wall, 3),
        "searches_per_s": round(n / wall, 2),
        **latency_summary(latencies),
        "mean_hits": round(sum(hits) / n, 2),
        "searches_with_fewer_than_top_k_hits": sum(1 for h in hits if h < args.top_k),
        "searches_with_zero_hits": sum(1 for h in hits if h == 0),
        "latencies_ms": [round(x * 1000, 3) for x in latencies] if args.raw else None,
        "errors": len(errors),
        "error_samples": errors[:3],
        "db": per_op(tr1 - tr0, ServerStats.delta(sv0, sv1) if stats else None, n) if trace.installed else None,
    }


def vector_stage_recall(memory: Any, args: argparse.Namespace, queries: list[tuple[str, str]]) -> dict[str, Any]:
    """Recall of mem0's vector step (PGVector.search as Memory.search calls it) against an exact scan."""
    internal_limit = max(args.top_k * 4, 60)  # Memory._search_vector_store over-fetches this many
    recalls = []
    returned = []
    for query, user in queries[: args.recall_checks]:
        vec = memory.embedding_model.embed(query, "search")
        got = memory.vector_store.search(query=query, vectors=vec, top_k=internal_limit, filters={"user_id": user})
        exact = exact_neighbours(args.database_url, args.collection, vec, user, args.top_k)
        got_ids = {str(r.id) for r in got}
        returned.append(len(got))
        if exact:
            recalls.append(len(got_ids & set(exact)) / len(exact))
    return {
        "checked": len(recalls),
        "candidates_requested": internal_limit,
        "mean_candidates_returned": round(sum(returned) / len(returned), 2) if returned else None,
        f"recall_at_{args.top_k}_vs_exact": round(sum(recalls) / len(recalls), 3) if recalls else None,
    }
