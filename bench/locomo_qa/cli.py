"""`python -m bench.locomo_qa`: the command line, the plan and its cost shown before anything starts, the run."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.locomo_data import DEFAULT_DATA
from bench.locomo_qa import estimate, plan, report
from bench.locomo_qa.answer import Answering, pending
from bench.locomo_qa.ingest import Ingest, applied
from bench.locomo_qa.llm import Model
from bench.locomo_qa.prompts import CUSTOM_INSTRUCTIONS, JUDGES
from bench.locomo_qa.service import Memserver, private_server
from bench.locomo_qa.store import RunDir
from harness import ROOT

PROTOCOL = "mem0ai/mem0@b3ede5b evaluation/ (memzero add + search, llm_judge J)"


def log(msg: str) -> None:
    print(f"[locomo-qa {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.locomo_qa",
        description="Answer quality on LoCoMo with a real model, as Mem0's published evaluation measures it: "
        "infer=true ingest of both speakers, answers from the top-k memories, LLM-as-judge J (plus a strict "
        "judge), F1 and BLEU-1 per category; tokens, latency and cost. See bench/README.md.",
    )
    m = p.add_argument_group("models (any OpenAI-compatible endpoint)")
    m.add_argument("--base-url", required=True, help="chat endpoint of the answer model (and of memserver's LLM)")
    m.add_argument("--model", required=True, help="answer model; also memserver's extraction model (private server)")
    m.add_argument("--judge-model", help="judge model (default: --model)")
    m.add_argument("--judge-base-url", help="judge endpoint (default: --base-url)")
    m.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    m.add_argument("--judge-api-key-env", help="environment variable of the judge's key (default: --api-key-env)")
    m.add_argument("--llm-timeout", type=float, default=300.0, help="seconds per answer or judge call (300)")
    s = p.add_argument_group("memserver")
    s.add_argument("--server", help="a running memserver (default: a private one, with Postgres in OUT/db)")
    s.add_argument("--key", default=os.environ.get("MEMSERVER_KEY"), help="its API key (default: $MEMSERVER_KEY)")
    s.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the private server, e.g. MEMSERVER_LLM__TIMEOUT_S=300 (repeatable)",
    )
    s.add_argument(
        "--no-custom-instructions",
        action="store_true",
        help="leave the project's custom instructions alone (default: set Mem0's evaluation text, as it does)",
    )
    w = p.add_argument_group("workload")
    w.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LoCoMo file (default: the shared dev file)")
    w.add_argument("--conversations", help="sample ids, comma-separated (default: all)")
    w.add_argument("--categories", default="1,2,3,4", help="category ids (default 1,2,3,4; 5 is adversarial)")
    w.add_argument("--top-k", type=int, default=30, help="memories retrieved per speaker (30, Mem0's default)")
    w.add_argument("--judge", choices=("mem0", "strict", "both"), default="both", help="judge prompt(s)")
    w.add_argument("--max-adds", type=int, help="the first N adds of each conversation (a slice)")
    w.add_argument("--max-questions", type=int, help="the first N questions of each conversation (a slice)")
    w.add_argument("--concurrency", type=int, default=4, help="adds (namespaces) and questions in flight (4)")
    r = p.add_argument_group("run")
    r.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "locomo_qa", help="run directory")
    r.add_argument("--resume", action="store_true", help="continue the run in --out (same settings)")
    r.add_argument("--yes", action="store_true", help="do not ask before starting")
    r.add_argument("--smoke", action="store_true", help="a CI run against a scripted model: never asks, not a score")
    for name, who in (("price-in", "answer/extraction input"), ("price-out", "answer/extraction output")):
        r.add_argument(f"--{name}", type=float, help=f"USD per 1M {who} tokens")
    for name, who in (("judge-price-in", "judge input"), ("judge-price-out", "judge output")):
        r.add_argument(f"--{name}", type=float, help=f"USD per 1M {who} tokens (default: the answer model's)")
    args = p.parse_args(argv)
    if args.server and not args.key:
        p.error("--server needs --key (or $MEMSERVER_KEY)")
    if bad := [kv for kv in args.server_env if "=" not in kv or not kv.startswith("MEMSERVER_")]:
        p.error(f"--server-env takes MEMSERVER_NAME=VALUE, not {bad[0]!r}")
    return args


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def api_key(var: str, base_url: str) -> str:
    key = os.environ.get(var)
    if key:
        return key
    if "api.openai.com" in base_url:
        raise SystemExit(f"${var} is not set (the key for {base_url})")
    return "none"  # local servers (Ollama, vLLM, llama.cpp) take any key


def pinned(args: argparse.Namespace, p: plan.Plan, sha: str, judges: tuple[str, ...]) -> dict[str, Any]:
    """The settings a resumed run must share with the run it continues."""
    return {
        "data_sha256": sha,
        "conversations": p.conversations,
        "categories": list(p.categories),
        "top_k": args.top_k,
        "base_url": args.base_url,
        "model": args.model,
        "judge_base_url": args.judge_base_url or args.base_url,
        "judge_model": args.judge_model or args.model,
        "judges": list(judges),
        "custom_instructions": not args.no_custom_instructions,
        "server": args.server or "private",
        "memserver_commit": commit(),
        "protocol": PROTOCOL,
        "smoke": args.smoke,  # a scripted model: the report says it is not a score
    }


def confirm(args: argparse.Namespace) -> None:
    if args.yes or args.smoke:
        return
    if not sys.stdin.isatty():
        raise SystemExit("not started: pass --yes to run without a terminal")
    if input("Start? [y/N] ").strip().lower() not in ("y", "yes"):
        raise SystemExit("not started")


async def work(
    args: argparse.Namespace, url: str, key: str, p: plan.Plan, store: RunDir, run_id: str, fresh: bool
) -> dict[str, Any]:
    judges = tuple(store.manifest()["pinned"]["judges"])
    ms = Memserver(url, key, args.concurrency)
    answerer = Model(args.base_url, args.model, api_key(args.api_key_env, args.base_url), args.llm_timeout)
    judge_url = args.judge_base_url or args.base_url
    judge_key = api_key(args.judge_api_key_env or args.api_key_env, judge_url)
    judge = Model(judge_url, judge_model(args), judge_key, args.llm_timeout)
    try:
        await ms.ping()
        if fresh and args.server:  # as Mem0's evaluation: the namespaces start empty
            for user_id in p.namespaces():
                await ms.delete_all(user_id)
        if not args.no_custom_instructions:
            await ms.set_custom_instructions(CUSTOM_INSTRUCTIONS)
        counts: dict[str, Any] = {"ingest": await Ingest(ms, store, run_id, args.concurrency, log).run(p.adds)}
        log("ingest done; questions")
        qa = Answering(
            ms, answerer, judge, store, top_k=args.top_k, judges=judges, concurrency=args.concurrency, log=log
        )
        counts["questions"] = await qa.run(p.questions)
        counts["notes"] = answerer.notes + judge.notes
        return counts
    finally:
        await ms.aclose()
        await answerer.aclose()
        await judge.aclose()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    judges = JUDGES if args.judge == "both" else (args.judge,)
    categories = tuple(sorted({int(c) for c in args.categories.split(",") if c.strip()}))
    data, sha = plan.load(args.data)
    wanted = [c.strip() for c in args.conversations.split(",")] if args.conversations else None
    p = plan.build(
        data,
        conversations=wanted,
        categories=categories,
        max_adds=args.max_adds,
        max_questions=args.max_questions,
    )
    store = RunDir(args.out)
    store.lock()
    try:
        run(args, p, sha, judges, store)
    except KeyboardInterrupt:
        raise SystemExit(f"interrupted: `--resume --out {store.path}` continues the run") from None
    finally:
        store.close()


def run(args: argparse.Namespace, p: plan.Plan, sha: str, judges: tuple[str, ...], store: RunDir) -> None:
    fresh = open_run(args, store, pinned(args, p, sha, judges))
    prices = {
        "in": args.price_in,
        "out": args.price_out,
        "judge_in": args.judge_price_in if args.judge_price_in is not None else args.price_in,
        "judge_out": args.judge_price_out if args.judge_price_out is not None else args.price_out,
    }
    done = applied(store)
    adds = [a for a in p.adds if a.key not in done]
    questions = pending(p.questions, store, judges)
    ci = None if args.no_custom_instructions else CUSTOM_INSTRUCTIONS
    est = estimate.estimate(adds, questions, top_k=args.top_k, ci=ci)
    print(
        describe(args, p, store, fresh, len(adds), judges) + estimate.table(est, prices, args.model, judge_model(args))
    )
    if adds or questions:
        confirm(args)
    if fresh:
        run_id = uuid.uuid4().hex[:12]  # in every add's marker: a shared server may hold another run's adds
        store.write_manifest({"pinned": pinned(args, p, sha, judges), "run_id": run_id, "created_at": _now()})
    manifest = store.manifest()
    entry: dict[str, Any] = {
        "started_at": _now(),
        **{k: getattr(args, k) for k in ("max_adds", "max_questions", "concurrency")},
        "estimate": est.as_dict(prices),
    }
    manifest["runs"] = [*manifest.get("runs", []), entry]
    store.write_manifest(manifest)
    if adds or questions:
        entry["counts"] = execute(args, p, store, manifest["run_id"], fresh)
    entry["finished_at"] = _now()
    store.write_manifest(manifest)
    print(report.write(store, report.build(store, p, judges, prices), judges), flush=True)
    log(f"report: {store.path / 'report.json'}")


def open_run(args: argparse.Namespace, store: RunDir, want: dict[str, Any]) -> bool:
    """Whether this is a fresh run; a resumed one must have the pinned settings it was started with."""
    if store.started() and not args.resume:
        raise SystemExit(f"{store.path} holds a run already: --resume continues it, or choose another --out")
    if args.resume and not store.started():
        raise SystemExit(f"--resume: no run in {store.path}")
    if store.started():
        store.check_manifest(want)
    api_key(args.api_key_env, args.base_url)  # a missing key is said now, not after the question
    api_key(args.judge_api_key_env or args.api_key_env, args.judge_base_url or args.base_url)
    return not store.started()


def judge_model(args: argparse.Namespace) -> str:
    return str(args.judge_model or args.model)


def describe(
    args: argparse.Namespace, p: plan.Plan, store: RunDir, fresh: bool, adds_left: int, judges: tuple[str, ...]
) -> str:
    server = args.server or f"private (Postgres in {store.path / 'db'})"
    if fresh and args.server:
        server += ", its namespaces cleared first (as Mem0's evaluation)"
    if not args.no_custom_instructions:
        server += "; the project's custom instructions: Mem0's evaluation text"
    return (
        f"LoCoMo QA {'' if fresh else '(resumed) '}in {store.path}: conversations {', '.join(p.conversations)}, "
        f"categories {list(p.categories)}, top_k {args.top_k}, judges {list(judges)}\n"
        f"  memserver: {server}\n"
        f"  left: {adds_left} of {len(p.adds)} adds; {len(p.questions)} questions\n"
        "  estimated cost of what is left:\n"
    )


def execute(args: argparse.Namespace, p: plan.Plan, store: RunDir, run_id: str, fresh: bool) -> dict[str, Any]:
    """Ingest, answer and judge against the given server, or a private one whose LLM is the answer model."""
    if args.server:
        return asyncio.run(work(args, args.server, args.key, p, store, run_id, fresh))
    env = {
        "MEMSERVER_LLM__BASE_URL": args.base_url,
        "MEMSERVER_LLM__API_KEY": api_key(args.api_key_env, args.base_url),
        "MEMSERVER_LLM__MODEL": args.model,
        **dict(kv.split("=", 1) for kv in args.server_env),
    }
    with private_server(store.path, env, log) as (url, key):
        return asyncio.run(work(args, url, key, p, store, run_id, fresh))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
