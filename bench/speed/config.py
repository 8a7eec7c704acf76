"""Settings of the speed benchmark: sizes, targets, paths, and its command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from harness import ROOT

DESCRIPTION = "Speed benchmark (benchmarks.md §2): memserver against the open-source Mem0 library, in one run."
PEER_ENV_SCRIPT = ROOT / "bench" / "mem0_peer_env.sh"


MEM0_DB = "mem0bench"


ITERATIVE = "-c hnsw.iterative_scan=relaxed_order"


PEER_MODES = {"default": None, "iterative": ITERATIVE}


SEARCH_MODES = ("hybrid", "semantic")


FULL = {"n": 2000, "sizes": "10000,100000", "queries": 200, "pool": 5000, "warmup": 20, "recall_checks": 20}


QUICK = {"n": 100, "sizes": "1000,3000", "queries": 40, "pool": 500, "warmup": 5, "recall_checks": 10}


TARGETS = {"ingest_ratio_c8": 10.0, "search_p95_ratio": 4.0, "hybrid_p95_100k_ms": 50.0}


def log(msg: str) -> None:
    print(f"[speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.speed", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke size (CI): --n 100 --sizes 1000,3000 --queries 40 --pool 500"
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "speed.json")
    p.add_argument("--repeat", type=int, default=1, help="complete runs; the table shows medians")
    p.add_argument("--n", type=int, help=f"adds per ingest concurrency level (default {FULL['n']})")
    p.add_argument("--concurrency", default="1,8", help="ingest concurrency levels (default 1,8)")
    p.add_argument("--ingest-users", type=int, default=50)
    p.add_argument("--sizes", help=f"memories in the project for the search phase (default {FULL['sizes']})")
    p.add_argument("--per-user", type=int, default=100, help="memories per user in the bulk load")
    p.add_argument("--queries", type=int, help=f"searches per size, mode and concurrency (default {FULL['queries']})")
    p.add_argument("--search-concurrency", default="1,8", help="search concurrency levels (default 1,8)")
    p.add_argument("--warmup", type=int, help=f"unmeasured searches before each run (default {FULL['warmup']})")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--pool", type=int, help=f"distinct texts embedded for the bulk load (default {FULL['pool']})")
    p.add_argument("--bulk-batch", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--texts-file", type=Path, help="replay these texts/queries (python -m bench.mem0_peer --dump-texts format)"
    )
    p.add_argument("--no-peer", action="store_true", help="memserver only")
    p.add_argument("--peer-modes", help="Mem0 runs: default (out of the box), iterative (default: both)")
    p.add_argument("--peer-python", type=Path, help="python of the peer venv (default: bench/mem0_peer_env.sh)")
    p.add_argument("--recall-checks", type=int, help="Mem0 searches checked against an exact scan (default 20)")
    p.add_argument("--no-sdk", action="store_true", help="skip the ingest through the official Python SDK")
    p.add_argument("--embedder-cache", action="store_true", help="keep memserver's embedding cache (default off)")
    p.add_argument("--profile", type=Path, help="py-spy the API process during the c8 ingest and largest search")
    p.add_argument("--profile-gil", action="store_true", help="with --profile: only threads holding the GIL")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (Postgres data, logs)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    args.search_levels = [int(x) for x in args.search_concurrency.split(",") if x.strip()]
    args.sizes = [int(x) for x in str(args.sizes).split(",") if x.strip()]
    modes = args.peer_modes or "default,iterative"
    args.peer_modes = [] if args.no_peer else [m for m in modes.split(",") if m.strip()]
    for m in args.peer_modes:
        if m not in PEER_MODES:
            p.error(f"--peer-modes: unknown mode {m!r} (default, iterative)")
    return args
