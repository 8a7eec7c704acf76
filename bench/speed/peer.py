"""The Mem0 peer (``bench.mem0_peer``), run in its own virtualenv against the second database."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.speed.config import PEER_ENV_SCRIPT, PEER_MODES, log
from harness import ROOT


def peer_python(args: argparse.Namespace) -> str | None:
    if args.no_peer:
        return None
    if args.peer_python:
        return str(args.peer_python)
    log("building / checking the Mem0 peer venv (bash bench/mem0_peer_env.sh) ...")
    proc = subprocess.run(["bash", str(PEER_ENV_SCRIPT)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"bench/mem0_peer_env.sh failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


def run_peer(py: str, args: argparse.Namespace, db_url: str, texts_file: Path, out: Path, mode: str) -> dict[str, Any]:
    cmd = [
        py, "-m", "bench.mem0_peer", "--database-url", db_url, "--texts-file", str(texts_file), "--out", str(out),
        "--n", str(args.n), "--concurrency", ",".join(map(str, args.levels)),
        "--ingest-users", str(args.ingest_users), "--sizes", ",".join(map(str, args.sizes)),
        "--per-user", str(args.per_user), "--queries", str(args.queries),
        "--search-concurrency", ",".join(map(str, args.search_levels)), "--warmup", str(args.warmup),
        "--pool", str(args.pool), "--seed", str(args.seed), "--top-k", str(args.top_k),
        "--recall-checks", str(args.recall_checks), "--checkpoint",
    ]  # fmt: skip
    if PEER_MODES[mode]:
        cmd += ["--pg-options", PEER_MODES[mode]]
    log(f"Mem0 peer ({mode}) ...")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=7200)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"mem0 peer ({mode}) failed with exit code {proc.returncode}")
    result = json.loads(out.read_text())
    result["table"] = proc.stdout
    log(f"Mem0 peer ({mode}) done in {time.perf_counter() - t0:.0f}s")
    return result
