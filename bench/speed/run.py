"""One complete run (memserver, then the Mem0 peer), and ``main``: repeats, medians, table, JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.mem0_peer import common as mem0_env
from bench.speed.config import loadavg, log, parse_args
from bench.speed.peer import peer_python, run_peer
from bench.speed.phases import memserver_phases
from bench.speed.report import print_table, summarize, targets
from bench.speed.stack import Stack, checkpoint, drop_db
from bench.speed.workload import Workload
from harness.stats import median_of


def run_once(args: argparse.Namespace, rep: int, peer_py: str | None) -> dict[str, Any]:
    """memserver's phases, then the Mem0 peer on the same Postgres; the run's JSON with its flat summary."""
    run: dict[str, Any] = {"repeat": rep, "loadavg_at_start": loadavg(), "started": datetime.now(UTC).isoformat()}
    t_all = time.perf_counter()
    stack = Stack(args)
    wl = Workload(args)
    texts_file = stack.workdir / "workload.json"
    wl.dump(texts_file)
    try:
        stack.start_postgres()
        asyncio.run(stack.setup_databases())
        stack.migrate()
        t0 = time.perf_counter()
        run["memserver"] = asyncio.run(memserver_phases(stack, args, wl))
        run["memserver"]["phase_s"] = round(time.perf_counter() - t0, 1)
        run["loadavg_after_memserver"] = loadavg()
        stack.stop_server()
        # Free memserver's data before the peer runs, so both systems meet the same cache state.
        asyncio.run(drop_db(stack, "memserver"))
        run["mem0"] = peer_runs(stack, args, peer_py, texts_file, run["memserver"]["search"])
        run["loadavg_at_end"] = loadavg()
    finally:
        stack.stop()
    run["total_s"] = round(time.perf_counter() - t_all, 1)
    run["summary"] = summarize(run, args)
    return run


def peer_runs(
    stack: Stack, args: argparse.Namespace, peer_py: str | None, texts_file: Path, searched: dict[str, Any]
) -> dict[str, Any]:
    """The Mem0 peer once per --peer-modes mode, each checked to have searched memserver's (query, user) pairs."""
    out: dict[str, Any] = {}
    if not peer_py:
        return out
    for mode in args.peer_modes:
        asyncio.run(checkpoint(stack))
        res = run_peer(peer_py, args, stack.mem0_url(), texts_file, stack.workdir / f"mem0-{mode}.json", mode)
        same = all(
            res["search"].get(size, {}).get("search_pairs") == block["search_pairs"] for size, block in searched.items()
        )
        res["workload_identical_to_memserver"] = same
        if not same:
            log(f"WARNING: the Mem0 peer ({mode}) searched other (query, user) pairs than memserver")
        out[mode] = res
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark --repeat times; print the table, write the JSON to --out."""
    # The peer's process environment (offline, no telemetry, TOKENIZERS_PARALLELISM=false): this process,
    # its SDK subprocess and the memserver it starts have always run with it, so the figures stay comparable.
    mem0_env.apply()
    args = parse_args(argv)
    started = datetime.now(UTC).isoformat()
    la0 = loadavg()
    peer_py = peer_python(args)
    runs = []
    for rep in range(args.repeat):
        log(f"run {rep + 1}/{args.repeat}")
        runs.append(run_once(args, rep, peer_py))
    summary = runs[0]["summary"] if len(runs) == 1 else median_of(r["summary"] for r in runs)
    result = {
        "benchmark": "speed (benchmarks.md §2)",
        "started": started,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": la0,
            "loadavg_at_end": loadavg(),
        },
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "summary_is_median_of": len(runs),
        "targets": targets(summary, args),
        "fair_search_comparison": "mem0-iterative: out of the box (hnsw.iterative_scan=off) Mem0's user-filtered "
        "HNSW search returns few or no results at these sizes, so its latency is that of a search that finds "
        "almost nothing; with iterative_scan=relaxed_order it returns the user's nearest memories.",
        "runs": runs,
    }
    header = (
        f"memserver vs Mem0 OSS 2.2.1: one Postgres 18 + pgvector, all-MiniLM-L6-v2, infer=false "
        f"(n={args.n}, sizes={args.sizes}, queries={args.queries}"
        + (f", medians of {len(runs)} runs" if len(runs) > 1 else "")
        + f"; loadavg {la0} -> {result['machine']['loadavg_at_end']})"
    )
    print_table(summary, args, header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 0
