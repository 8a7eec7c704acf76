"""The Mem0 OSS side of the inference-cost benchmark, run in the peer virtualenv by `bench.inference_cost`.

    $PY -m bench.inference_cost.mem0_side --database-url postgresql://...:PORT/mem0bench \\
        --admin-url postgresql://...:PORT/postgres --llm-base-url http://127.0.0.1:N/v1 \\
        --workload workload.json --out mem0.json

`Memory.add(messages, user_id=..., metadata=..., infer=True)` for each exchange of the workload file, one at a
time, with mem0ai 2.2.1 on pgvector, the all-MiniLM-L6-v2 weights through sentence-transformers, and the fake
LLM (which answers Mem0's extraction prompt in Mem0's format). Per add: wall time, the fake's chat handling
time, CPU time of this process, pg_stat_statements calls in the Mem0 database (read from the `postgres`
database), client-side psycopg statements and round trips, calls into Mem0's SQLite history store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.inference_cost.common import (
    STATEMENTS_SQL,
    add_record,
    fake_delta,
    fake_stats,
    statement_breakdown,
    summarize,
)
from bench.mem0_peer.common import apply as apply_env
from bench.mem0_peer.common import log
from bench.mem0_peer.dbstats import PsycopgTrace
from bench.mem0_peer.store import build_memory, default_model_path, dist_version, drop_collection, redact

SQLITE_METHODS = ("get_last_messages", "save_messages", "batch_add_history", "add_history")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.inference_cost.mem0_side", description=__doc__)
    p.add_argument("--database-url", required=True, help="the Mem0 database (pgvector installed)")
    p.add_argument("--admin-url", required=True, help="another database of the same server (pg_stat_statements)")
    p.add_argument("--llm-base-url", required=True, help="the fake LLM, started with --mem0-echo")
    p.add_argument("--workload", type=Path, required=True, help="the JSON written by bench.inference_cost")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--collection", default="mem0_infer_bench")
    p.add_argument("--torch-threads", type=int, help="torch.set_num_threads (default: torch's own, the cores)")
    p.add_argument("--embedder-base-url", help="embed through this OpenAI-compatible URL instead of local MiniLM")
    return p.parse_args(argv)


class Counting:
    """Counts calls of a few methods of an object (Mem0's SQLite history store)."""

    def __init__(self, target: Any, names: tuple[str, ...]):
        self.calls = 0
        for name in names:
            orig = getattr(target, name, None)
            if orig is None:
                continue

            def wrapped(*a: Any, _orig: Any = orig, **kw: Any) -> Any:
                self.calls += 1
                return _orig(*a, **kw)

            setattr(target, name, wrapped)


def main(argv: list[str] | None = None) -> int:
    apply_env()
    args = parse_args(argv)
    work = json.loads(args.workload.read_text())
    history_dir = tempfile.mkdtemp(prefix="mem0-icost-")
    os.environ["MEM0_DIR"] = history_dir
    trace = PsycopgTrace()
    trace.install()
    log("importing mem0 / torch ...")
    import mem0  # noqa: F401
    import psycopg
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    ns = argparse.Namespace(
        database_url=args.database_url,
        pg_options=None,
        pg_maxconn=None,
        collection=args.collection,
        model_path=default_model_path(),
        llm_base_url=args.llm_base_url,
        embedder_base_url=args.embedder_base_url,
    )
    drop_collection(args.database_url, args.collection)
    memory, config = build_memory(ns, history_dir)
    sqlite = Counting(memory.db, SQLITE_METHODS)
    admin = psycopg.connect(args.admin_url, autocommit=True)
    dbname = args.database_url.rsplit("/", 1)[1].split("?")[0]

    def pgss() -> tuple[int, float]:
        row = admin.execute(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(total_plan_time + total_exec_time), 0)::float8 "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)",
            (dbname,),
        ).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    log(f"{len(work['warmup'])} warm-up + {len(work['measured'])} adds, infer=True ...")
    for ex in work["warmup"]:
        memory.add(ex["messages"], user_id=work["warmup_user_id"], infer=True)
    adds: list[dict[str, Any]] = []
    loads = [round(x, 2) for x in os.getloadavg()]
    admin.execute("SELECT pg_stat_statements_reset()")
    for ex in work["measured"]:
        metadata = {"dia_ids": ex["dia_ids"], "session": ex["session"]}
        f0 = fake_stats(args.llm_base_url)
        s0 = pgss()
        tr0 = trace.snapshot()
        q0 = sqlite.calls
        c0 = time.process_time()
        t0 = time.perf_counter()
        res = memory.add(ex["messages"], user_id=work["user_id"], metadata=metadata, infer=True)
        wall = time.perf_counter() - t0
        c1 = time.process_time()
        tr1 = trace.snapshot()
        q1 = sqlite.calls
        s1 = pgss()
        f1 = fake_stats(args.llm_base_url)
        results = res.get("results", []) if isinstance(res, dict) else []
        adds.append(
            add_record(
                wall,
                c1 - c0,
                fake_delta(f0, f1),
                s1[0] - s0[0],
                db_ms=round(s1[1] - s0[1], 3),
                memories_written=sum(1 for r in results if r.get("event") in ("ADD", "UPDATE")),
                db_round_trips_client=tr1["round_trips"] - tr0["round_trips"],
                db_statements_client=tr1["statements"] - tr0["statements"],
                sqlite_calls=q1 - q0,
            )
        )
    rows = admin.execute(STATEMENTS_SQL.format(param="%s"), (dbname,)).fetchall()
    statements = statement_breakdown([(r[0], int(r[1]), float(r[2])) for r in rows], len(adds))
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        stored = int(
            conn.execute(
                f'SELECT count(*) FROM "{args.collection}" WHERE payload->>%s = %s',
                ("user_id", work["user_id"]),
            ).fetchone()[0]
        )
    out = {
        "system": "mem0-oss",
        "api": "Memory.add(messages, user_id=..., metadata=..., infer=True), sequential, one Memory object",
        "versions": {
            "mem0ai": dist_version("mem0ai"),
            "torch": torch.__version__,
            "sentence_transformers": dist_version("sentence-transformers"),
            "psycopg": dist_version("psycopg"),
        },
        "mem0_config": redact(config),
        "torch_threads": torch.get_num_threads(),
        "loadavg_at_start": loads,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "rows_stored_for_user": stored,
        "summary": summarize(adds),
        "statements": statements,
        "adds": adds,
    }
    admin.close()
    with contextlib.suppress(Exception):  # closing is best effort
        memory.close()
    drop_collection(args.database_url, args.collection)
    shutil.rmtree(history_dir, ignore_errors=True)
    args.out.write_text(json.dumps(out, indent=2))
    s = out["summary"]
    log(
        f"Mem0: own p50 {s['own_ms_p50']} / p95 {s['own_ms_p95']} ms, {s['llm_calls_mean']} LLM calls, "
        f"{s['prompt_tokens_mean']} prompt tokens, {s['db_statements_mean']} statements per add"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
