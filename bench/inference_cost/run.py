"""The driver: Postgres, the fake LLM, memserver's side, then the Mem0 peer in its virtualenv; table and JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.inference_cost.common import (
    STATEMENTS_SQL,
    add_record,
    fake_delta,
    fake_stats,
    statement_breakdown,
    summarize,
)
from bench.inference_cost.fake import server_env, start_fake
from bench.locomo_data import DEFAULT_DATA, exchanges, load
from bench.speed.http import HttpConn
from bench.speed.meters import Profiler
from harness import ROOT
from harness.postgres import PostgresRun, plain_url
from harness.server import served
from harness.tenants import new_tenant

MEM0_DB = "mem0bench"
PEER_ENV_SCRIPT = ROOT / "bench" / "mem0_peer_env.sh"
TARGETS = {"llm_calls_per_add": 1.0, "prompt_tokens_ratio_max": 0.5, "own_ms_p95_max": 10.0}
PGSS = (
    "SELECT coalesce(sum(calls), 0)::bigint AS calls, "
    "coalesce(sum(total_plan_time + total_exec_time), 0)::float8 AS ms FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)"
)


def log(msg: str) -> None:
    print(f"[inference-cost {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.inference_cost", description=__doc__)
    p.add_argument("--n", type=int, default=100, help="measured adds per system (default 100)")
    p.add_argument("--warmup", type=int, default=5, help="unmeasured adds first, for another user (default 5)")
    p.add_argument("--conversation", default="conv-26", help="LoCoMo sample id (default conv-26)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "inference_cost.json")
    p.add_argument("--no-peer", action="store_true", help="memserver only (no Mem0, no torch)")
    p.add_argument("--peer-python", type=Path, help="python of the Mem0 peer venv (default: bench/mem0_peer_env.sh)")
    p.add_argument(
        "--peer-torch-threads",
        type=int,
        help="torch threads of the Mem0 peer (default: torch's own = the cores; on a loaded 2-core machine "
        "its OpenMP threads thrash and Mem0's time balloons: 1 shows the calmer case)",
    )
    p.add_argument("--embedder-cache", action="store_true", help="keep memserver's embedding cache (default: off)")
    p.add_argument(
        "--remote-embedder",
        action="store_true",
        help="both systems embed through the fake's OpenAI-compatible /embeddings (instant, deterministic) "
        "instead of the local MiniLM, and its handling time is subtracted like the LLM's: the systems' own "
        "overhead without embedding compute",
    )
    p.add_argument(
        "--arrival-times",
        action="store_true",
        help="stamp each add one minute after the previous one of its session (LoCoMo gives one date per session: "
        "a live conversation's adds each carry their own time, which is in the prompt)",
    )
    p.add_argument("--keep", action="store_true", help="keep the run directory (Postgres, logs)")
    p.add_argument("--backlog", type=int, help="backlog mode: this many queued adds per scope, coalesced vs alone")
    p.add_argument("--scopes", type=int, default=4, help="backlog mode: scopes (users), default 4")
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy the API process during memserver's measured adds, into this directory "
        "(.venv/bin/pip install py-spy; profiled runs are slower: do not compare their times)",
    )
    return p.parse_args(argv)


def workload(args: argparse.Namespace) -> dict[str, Any]:
    convs = load(args.data, {args.conversation})
    if not convs:
        raise SystemExit(f"{args.conversation} is not in {args.data}")
    ex = exchanges(convs[0]["turns"])
    if args.arrival_times:
        nth: dict[int, int] = {}
        for e in ex:
            nth[e["session"]] = nth.get(e["session"], -1) + 1
            e["ts"] += 60 * nth[e["session"]]
    if len(ex) < args.n + args.warmup:
        raise SystemExit(f"{args.conversation} has {len(ex)} exchanges, {args.n + args.warmup} wanted")
    # The warm-up adds come from the end of the conversation and go to another user: the measured scope
    # starts empty and grows as it would in production.
    return {
        "conversation": args.conversation,
        "user_id": f"locomo-{args.conversation}",
        "warmup_user_id": "warmup",
        "measured": ex[: args.n],
        "warmup": ex[len(ex) - args.warmup :] if args.warmup else [],
    }


# ----------------------------------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------------------------------
async def setup_databases(pg_url: str) -> None:
    admin = await asyncpg.connect(plain_url(pg_url.rsplit("/", 1)[0] + "/postgres"))
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await admin.execute(f"CREATE DATABASE {MEM0_DB}")
    finally:
        await admin.close()
    mem0 = await asyncpg.connect(plain_url(pg_url.rsplit("/", 1)[0] + f"/{MEM0_DB}"))
    try:
        await mem0.execute("CREATE EXTENSION IF NOT EXISTS vector")
    finally:
        await mem0.close()


def peer_python(args: argparse.Namespace) -> str:
    if args.peer_python:
        return str(args.peer_python)
    log("building / checking the Mem0 peer venv (bash bench/mem0_peer_env.sh) ...")
    proc = subprocess.run(["bash", str(PEER_ENV_SCRIPT)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"bench/mem0_peer_env.sh failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


# ----------------------------------------------------------------------------------------------
# memserver's side
# ----------------------------------------------------------------------------------------------
def v1_body(ex: dict[str, Any], user_id: str) -> bytes:
    return json.dumps(
        {
            "messages": ex["messages"],
            "user_id": user_id,
            "infer": True,
            "async_mode": False,
            "timestamp": ex["ts"],
            "metadata": {"dia_ids": ex["dia_ids"], "session": ex["session"]},
        }
    ).encode()


async def memserver_side(
    server_url: str,
    server_pid: int,
    key: str,
    admin_url: str,
    llm_url: str,
    work: dict[str, Any],
    profile: Path | None = None,
) -> dict[str, Any]:
    host, port = server_url.removeprefix("http://").rsplit(":", 1)
    conn = HttpConn(host, int(port), key)
    await conn.open()
    admin = await asyncpg.connect(admin_url)
    proc = psutil.Process(server_pid)

    def cpu() -> float:
        t = proc.cpu_times()
        return float(t.user + t.system)

    start = fake_stats(llm_url)
    try:
        for ex in work["warmup"]:
            status, body = await conn.post(b"/v1/memories/", v1_body(ex, work["warmup_user_id"]))
            if status != 200:
                raise RuntimeError(f"memserver warm-up add failed: {status} {body[:500]!r}")
        adds: list[dict[str, Any]] = []
        loads = loadavg()
        await admin.execute("SELECT pg_stat_statements_reset()")
        profiler = Profiler(profile, server_pid)
        profiler.start("memserver-infer-adds")
        for ex in work["measured"]:
            payload = v1_body(ex, work["user_id"])
            f0 = fake_stats(llm_url)
            s0 = await admin.fetchrow(PGSS, "memserver")
            c0 = cpu()
            t0 = time.perf_counter()
            status, body = await conn.post(b"/v1/memories/", payload)
            wall = time.perf_counter() - t0
            c1 = cpu()
            s1 = await admin.fetchrow(PGSS, "memserver")
            f1 = fake_stats(llm_url)
            if status != 200:
                raise RuntimeError(f"memserver add failed: {status} {body[:500]!r}")
            events = json.loads(body)
            adds.append(
                add_record(
                    wall,
                    c1 - c0,
                    fake_delta(f0, f1),
                    int(s1["calls"] - s0["calls"]),
                    db_ms=round(s1["ms"] - s0["ms"], 3),
                    memories_written=sum(1 for e in events if e.get("event") in ("ADD", "UPDATE")),
                    events={op: sum(1 for e in events if e.get("event") == op) for op in ("ADD", "UPDATE", "DELETE")},
                )
            )
        profiled = profiler.stop()
        fake_total = fake_delta(start, fake_stats(llm_url))  # warm-up included, as in the events below
        rows = await admin.fetch(STATEMENTS_SQL.format(param="$1"), "memserver")
        statements = statement_breakdown([(r["query"], r["calls"], r["ms"]) for r in rows], len(adds))
    finally:
        await conn.close()
        await admin.close()
    return {
        "api": "POST /v1/memories/ with infer=true, async_mode=false (processed within the request)",
        "loadavg_at_start": loads,
        "loadavg_at_end": loadavg(),
        "summary": summarize(adds),
        "fake_llm_total": fake_total,
        "event_metadata": events_check(server_url, key, len(work["measured"]) + len(work["warmup"])),
        "statements": statements,
        "profile": profiled,
        "adds": adds,
    }


def events_check(server_url: str, key: str, expected: int) -> dict[str, Any]:
    """What memserver itself recorded on the add events (metadata): a cross-check of the fake's counts."""
    r = httpx.get(
        f"{server_url}/v1/events/",
        params={"page_size": 1000},
        headers={"Authorization": f"Token {key}"},
        timeout=30,
    )
    r.raise_for_status()
    rows = [e for e in r.json()["results"] if isinstance(e.get("metadata"), dict) and "llm_calls" in e["metadata"]]
    meta = [e["metadata"] for e in rows]
    return {
        "events": len(rows),
        "expected": expected,
        "statuses": sorted({str(e.get("status")) for e in rows}),
        "llm_calls": sum(m.get("llm_calls", 0) for m in meta),
        "prompt_tokens": sum(m.get("prompt_tokens", 0) for m in meta),
        "cached_prompt_tokens": sum(m.get("cached_prompt_tokens", 0) for m in meta),
        "second_calls": sum(1 for m in meta if m.get("second_call")),
        "candidates_mean": round(sum(m.get("candidates", 0) for m in meta) / len(meta), 2) if meta else None,
    }


# ----------------------------------------------------------------------------------------------
# Mem0's side (a subprocess in the peer venv)
# ----------------------------------------------------------------------------------------------
def mem0_side(
    py: str,
    pg_base: str,
    llm_url: str,
    work_file: Path,
    out: Path,
    profile: Path | None = None,
    torch_threads: int | None = None,
    *,
    remote_embedder: bool = False,
) -> dict[str, Any]:
    cmd = [
        py, "-m", "bench.inference_cost.mem0_side",
        "--database-url", f"{pg_base}/{MEM0_DB}", "--admin-url", f"{pg_base}/postgres",
        "--llm-base-url", llm_url, "--workload", str(work_file), "--out", str(out),
    ]  # fmt: skip
    if torch_threads:
        cmd += ["--torch-threads", str(torch_threads)]
    if remote_embedder:
        cmd += ["--embedder-base-url", llm_url]
    spy = Path(sys.executable).with_name("py-spy")
    if profile is not None and spy.exists():  # the whole peer process, imports included
        profile.mkdir(parents=True, exist_ok=True)
        cmd = [str(spy), "record", "-r", "200", "--format", "raw", "-o", str(profile / "mem0.txt"), "--", *cmd]
    log("Mem0 peer ...")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, timeout=3600)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"the Mem0 side failed with exit code {proc.returncode}")
    log(f"Mem0 peer done in {time.perf_counter() - t0:.0f}s")
    return dict(json.loads(out.read_text()))


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------
ROWS = [
    ("own time p50 ms (wall - fake providers)", "own_ms_p50"),
    ("own time p95 ms", "own_ms_p95"),
    ("wall time p50 ms", "wall_ms_p50"),
    ("fake LLM handling p50 ms", "llm_ms_p50"),
    ("fake embedder handling p50 ms (--remote-embedder)", "embedding_ms_p50"),
    ("CPU ms per add, own process", "cpu_ms_mean"),
    ("DB statements per add (pg_stat_statements)", "db_statements_mean"),
    ("DB time per add ms (plan + execute)", "db_ms_mean"),
    ("LLM calls per add", "llm_calls_mean"),
    ("prompt tokens per add", "prompt_tokens_mean"),
    ("prompt tokens, first add", "first_add_prompt_tokens"),
    ("prompt share in a cached prefix (any length)", "cached_prefix_share"),
    ("... under OpenAI's rule (>= 1024, 128 blocks)", "cached_prefix_share_openai_rule"),
    ("prompt characters per add", "prompt_chars_mean"),
    ("completion tokens per add", "completion_tokens_mean"),
    ("memories written per add", "memories_written_mean"),
]


def ratios(ms: dict[str, Any], m0: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for _, key in ROWS:
        a, b = ms.get(key), m0.get(key)
        out[key] = round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
    return out


def check_targets(ms: dict[str, Any], ratio: dict[str, float | None]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "one_llm_call_per_add": {
            "value": ms.get("llm_calls_mean"),
            "adds_with_more_than_one_call": ms.get("adds_with_more_than_one_llm_call"),
            "met": ms.get("llm_calls_max", 99) <= TARGETS["llm_calls_per_add"],
        },
        "own_ms_p95_under_10": {"value": ms.get("own_ms_p95"), "met": (ms.get("own_ms_p95") or 1e9) < 10.0},
    }
    pt = ratio.get("prompt_tokens_mean")
    out["prompt_tokens_at_most_half_of_mem0"] = {"value": pt, "met": None if pt is None else pt <= 0.5}
    return out


def table(result: dict[str, Any]) -> str:
    ms = result["memserver"]["summary"]
    m0 = (result.get("mem0") or {}).get("summary") or {}
    ratio = result.get("ratios") or {}
    lines = [
        "",
        f"Inference cost per add, LLM excluded: {ms['adds']} two-message exchanges of "
        f"{result['workload']['conversation']}, one user, sequential",
        "",
        f"{'':50s} {'memserver':>10s} {'Mem0 OSS':>10s} {'ratio':>7s}",
    ]

    def cell(v: Any) -> str:
        return f"{v:10.2f}" if isinstance(v, float) else f"{v:>10}" if v is not None else f"{'-':>10s}"

    for label, key in ROWS:
        r = ratio.get(key)
        lines.append(f"{label:50s} {cell(ms.get(key))} {cell(m0.get(key))} {(f'{r:7.3f}' if r else '      -')}")
    extra = []
    if m0:
        extra.append(
            f"Mem0 also: {m0.get('db_round_trips_client_mean')} psycopg round trips and "
            f"{m0.get('sqlite_calls_mean')} SQLite calls per add (history, last messages)"
        )
    ev = result["memserver"].get("event_metadata") or {}
    extra.append(
        f"memserver events: {ev.get('events')} (expected {ev.get('expected')}), llm_calls {ev.get('llm_calls')}, "
        f"second calls {ev.get('second_calls')}, candidates shown (mean) {ev.get('candidates_mean')}, "
        f"cached prompt tokens {ev.get('cached_prompt_tokens')} of {ev.get('prompt_tokens')}"
    )
    extra.append(
        "targets: "
        + ", ".join(
            f"{k} {'MET' if v['met'] else 'not met' if v['met'] is not None else 'n/a'} ({v['value']})"
            for k, v in result["targets"].items()
        )
    )
    extra.append(
        f"load average at start {result['machine']['loadavg_at_start']}, end {result['machine']['loadavg_at_end']}"
    )
    return "\n".join([*lines, "", *extra])


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.backlog:  # queued adds coalesced into one call, next to one at a time (bench/inference_cost/backlog.py)
        from bench.inference_cost import backlog

        out = args.out.with_name("inference_cost_backlog.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(backlog.main(args), indent=2))
        return
    work = workload(args)
    result: dict[str, Any] = {
        "benchmark": "inference cost (benchmarks.md §1b)",
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": loadavg()},
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "workload": {
            "conversation": work["conversation"],
            "adds": len(work["measured"]),
            "warmup_adds": len(work["warmup"]),
            "messages": sum(len(e["messages"]) for e in work["measured"]),
            "one_user": work["user_id"],
        },
        "method": {
            "own_time": "wall time of the add minus the fake's server-side handling of its chat requests (and of "
            "its embedding requests with --remote-embedder)",
            "db_statements": "pg_stat_statements calls in the system's own database (BEGIN/COMMIT included)",
            "llm": "the fake's /v1/_stats deltas; usage = ceil(whitespace words * 1.3), same rule both sides",
            "cached_prefix": "the fake's --prefix-cache: tokens of the longest prefix a request shares with one of "
            "the 64 previous requests of the same response_format (what vLLM / llama.cpp reuse), and the same "
            "under OpenAI's rule (no caching below 1,024 common tokens, then 128-token blocks)",
            "cpu": "CPU time of the system's own process (memserver API process; Mem0 peer process)",
        },
    }
    py = None if args.no_peer else peer_python(args)
    conf = ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track_planning = on"]
    with PostgresRun("memserver-icost-", extra_conf=conf, keep=args.keep) as run:
        fake, llm_url = start_fake(run.workdir)
        try:
            url = run.migrate()
            asyncio.run(setup_databases(url))
            pg_base = plain_url(url).rsplit("/", 1)[0]
            _, key = asyncio.run(new_tenant(url, "bench", f"icost-{time.time_ns()}"))
            env = server_env(llm_url, embedder_cache=args.embedder_cache, remote_embedder=args.remote_embedder)
            with served(url, run.workdir / "memserver.log", **env) as server:
                log(f"memserver: {len(work['warmup'])} warm-up + {len(work['measured'])} adds ...")
                t0 = time.perf_counter()
                result["memserver"] = asyncio.run(
                    memserver_side(server.url, server.proc.pid, key, f"{pg_base}/postgres", llm_url, work, args.profile)
                )
                log(f"memserver done in {time.perf_counter() - t0:.0f}s")
            if py:
                work_file = run.workdir / "workload.json"
                work_file.write_text(json.dumps(work))
                result["mem0"] = mem0_side(
                    py,
                    pg_base,
                    llm_url,
                    work_file,
                    run.workdir / "mem0.json",
                    args.profile,
                    args.peer_torch_threads,
                    remote_embedder=args.remote_embedder,
                )
        finally:
            fake.terminate()
            fake.wait(10)
    result["machine"]["loadavg_at_end"] = loadavg()
    ms = result["memserver"]["summary"]
    m0 = (result.get("mem0") or {}).get("summary") or {}
    result["ratios"] = ratios(ms, m0) if m0 else {}
    result["targets"] = check_targets(ms, result["ratios"])
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
