"""Backlog mode (issue 20, point 3): queued adds of one scope coalesced into one extraction call, next to the
same adds run one at a time.

    .venv/bin/python -m bench.inference_cost --backlog 8 --scopes 4            # about 2 minutes on 2 cores
    .venv/bin/python -m bench.inference_cost --backlog 8 --scopes 4 --remote-embedder

The scripted LLM's gate is closed (`POST /v1/_gate`: it holds chat requests, as a busy model does); each of
`--scopes` users gets `--backlog` consecutive LoCoMo exchanges of the conversation as async adds
(`POST /v3/memories/add/`, in order, with the session date as `timestamp`); the gate opens and the bench waits
until every event is done. Run twice, on a fresh memserver and project each: coalescing on
(`COALESCE_MAX_ADDS` = backlog) and off (1). Per add: LLM calls and prompt tokens (the fake's `/v1/_stats`,
and the events' own metadata), and what was stored: the (user, memory) pairs of both runs must be the same.
Targets: at most 0.3 LLM calls per add, and at most half the one-at-a-time prompt tokens per add.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from typing import Any

import httpx
from sqlalchemy import text

from bench.inference_cost.common import fake_delta, fake_stats
from bench.locomo_data import exchanges, load
from harness.postgres import PostgresRun
from harness.server import served
from harness.tenants import new_tenant
from memserver.storage.db import Database

TARGETS = {"llm_calls_per_add_max": 0.3, "prompt_tokens_ratio_max": 0.5}


def log(msg: str) -> None:
    print(f"[inference-cost backlog {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def gate(llm_url: str, *, open_: bool) -> None:
    req = urllib.request.Request(
        f"{llm_url.rstrip('/')}/_gate", data=json.dumps({"open": open_}).encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def workload(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """User k gets exchanges k*backlog .. (k+1)*backlog - 1 of the conversation, in order."""
    convs = load(args.data, {args.conversation})
    ex = exchanges(convs[0]["turns"])
    need = args.scopes * args.backlog
    if len(ex) < need:
        raise SystemExit(f"{args.conversation} has {len(ex)} exchanges, {need} wanted")
    return {f"backlog-user-{k}": ex[k * args.backlog : (k + 1) * args.backlog] for k in range(args.scopes)}


async def post_all(server_url: str, key: str, work: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every user's adds in order (users side by side); the accepted event ids."""
    async with httpx.AsyncClient(base_url=server_url, headers={"Authorization": f"Token {key}"}, timeout=60) as c:

        async def user(uid: str, items: list[dict[str, Any]]) -> list[str]:
            ids = []
            for ex in items:
                r = await c.post(
                    "/v3/memories/add/",
                    json={"messages": ex["messages"], "user_id": uid, "timestamp": ex["ts"], "infer": True},
                )
                r.raise_for_status()
                ids.append(r.json()["event_id"])
            return ids

        per_user = await asyncio.gather(*(user(u, items) for u, items in work.items()))
    return [i for ids in per_user for i in ids]


async def finished(url: str, project: Any, ids: list[str], limit_s: float = 600) -> tuple[list[Any], list[Any]]:
    """The events once all are done, and the project's memories (user, text)."""
    db = Database(url)
    try:
        deadline = time.monotonic() + limit_s
        while True:
            async with db.connect() as conn:
                events = (
                    await conn.execute(
                        text(
                            "SELECT id, status, error, results, metadata, attempts FROM events "
                            "WHERE id = ANY(CAST(:ids AS uuid[]))"
                        ),
                        {"ids": ids},
                    )
                ).all()
            if all(e.status in ("SUCCEEDED", "FAILED") for e in events) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        async with db.connect() as conn:
            stored = (
                await conn.execute(text("SELECT user_id, memory FROM memories WHERE project_id = :p"), {"p": project})
            ).all()
        return list(events), list(stored)
    finally:
        await db.dispose()


def one_mode(
    label: str, url: str, llm_url: str, env: dict[str, str], work: dict[str, Any], log_path: Any
) -> dict[str, Any]:
    project, key = asyncio.run(new_tenant(url, "bench", f"backlog-{label}-{time.time_ns()}"))
    with served(url, log_path, **env) as server:
        gate(llm_url, open_=False)
        try:
            before = fake_stats(llm_url)
            ids = asyncio.run(post_all(server.url, key, work))
            time.sleep(1.0)  # each scope's first add has been claimed and waits at the model
        finally:
            gate(llm_url, open_=True)
        events, stored = asyncio.run(finished(url, project, ids))
        spent = fake_delta(before, fake_stats(llm_url))
    adds = len(ids)
    meta = [e.metadata or {} for e in events]
    statuses: dict[str, int] = {}
    for e in events:
        statuses[e.status] = statuses.get(e.status, 0) + 1
    out = {
        "mode": label,
        "adds": adds,
        "statuses": statuses,
        "llm_calls_per_add": round(spent["chat_requests"] / adds, 3),
        "prompt_tokens_per_add": round(spent["prompt_tokens"] / adds, 1),
        "completion_tokens_per_add": round(spent["completion_tokens"] / adds, 1),
        "events_llm_calls": sum(m.get("llm_calls", 0) for m in meta),
        "events_prompt_tokens": sum(m.get("prompt_tokens", 0) for m in meta),
        "batched_adds": sum(1 for m in meta if "batch" in m),
        "batch_sizes": sorted({m["batch"]["size"] for m in meta if "batch" in m}),
        "second_calls": sum(1 for m in meta if m.get("second_call")),
        "results_per_event": sorted({len(e.results or []) for e in events}),
        "memories": len(stored),
        "_stored": sorted((s.user_id, s.memory) for s in stored),
    }
    log(json.dumps({k: v for k, v in out.items() if not k.startswith("_")}))
    return out


def main(args: argparse.Namespace) -> dict[str, Any]:
    from bench.inference_cost.fake import server_env, start_fake

    work = workload(args)
    result: dict[str, Any] = {
        "benchmark": "inference cost, backlog mode (issue 20 point 3)",
        "workload": {"conversation": args.conversation, "scopes": args.scopes, "backlog_per_scope": args.backlog},
    }
    with PostgresRun("memserver-icost-backlog-", keep=args.keep) as run:
        fake, llm_url = start_fake(run.workdir)
        try:
            url = run.migrate()
            env = server_env(llm_url, embedder_cache=args.embedder_cache, remote_embedder=args.remote_embedder)
            modes = [("coalesced", str(args.backlog)), ("one-at-a-time", "1")]
            result["modes"] = [
                one_mode(
                    label,
                    url,
                    llm_url,
                    {**env, "MEMSERVER_WORKER__COALESCE_MAX_ADDS": n},
                    work,
                    run.workdir / f"{label}.log",
                )
                for label, n in modes
            ]
        finally:
            fake.terminate()
            fake.wait(10)
    coalesced, alone = result["modes"]
    ratio = coalesced["prompt_tokens_per_add"] / alone["prompt_tokens_per_add"]
    same = coalesced.pop("_stored") == alone.pop("_stored")
    result["targets"] = {
        "llm_calls_per_add_at_most_0.3": {
            "value": coalesced["llm_calls_per_add"],
            "met": coalesced["llm_calls_per_add"] <= TARGETS["llm_calls_per_add_max"],
        },
        "prompt_tokens_at_most_half_of_one_at_a_time": {
            "value": round(ratio, 3),
            "met": ratio <= TARGETS["prompt_tokens_ratio_max"],
        },
        "same_memories_stored": {"value": same, "met": same},
    }
    print(table(result))
    return result


def table(result: dict[str, Any]) -> str:
    rows = [
        ("LLM calls per add (fake)", "llm_calls_per_add"),
        ("prompt tokens per add (fake)", "prompt_tokens_per_add"),
        ("completion tokens per add (fake)", "completion_tokens_per_add"),
        ("LLM calls, events' metadata (sum)", "events_llm_calls"),
        ("prompt tokens, events' metadata (sum)", "events_prompt_tokens"),
        ("adds served by a shared call", "batched_adds"),
        ("adds with a second (follow-up) call", "second_calls"),
        ("memories stored", "memories"),
    ]
    c, a = result["modes"]
    w = result["workload"]
    lines = [
        "",
        f"Backlog of {w['backlog_per_scope']} adds in each of {w['scopes']} scopes ({w['conversation']}), "
        "coalesced against one at a time",
        "",
        f"{'':42s} {'coalesced':>10s} {'one-by-one':>11s}",
    ]
    lines += [f"{label:42s} {c[key]!s:>10s} {a[key]!s:>11s}" for label, key in rows]
    lines.append("")
    lines.append(
        "targets: "
        + ", ".join(f"{k} {'MET' if v['met'] else 'not met'} ({v['value']})" for k, v in result["targets"].items())
    )
    return "\n".join(lines)
