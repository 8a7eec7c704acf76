"""Fairness under load (issue 20, point 4): a quiet project's single add against another project's backlog.

    .venv/bin/python -m bench.jobs --fairness                       # about 6 minutes on 2 cores
    .venv/bin/python -m bench.jobs --fairness --backlogs 0,100 --trials 3 --runners inprocess

Setup, private to the run: an embedded Postgres, a Redis, the scripted OpenAI-compatible LLM taking
``--model-ms`` (250 ms) per chat request (a small local model; embeddings instant), memserver with the
in-process runner (``INPROCESS_CONCURRENCY`` 4, the default) and with the Celery runner (2 ``memserver worker
--concurrency 1`` processes).

For each runner, backlog (0, 100, 1,000 adds of project A, accepted before B's) and shape (A's adds in distinct
scopes, or all in one scope): B posts one async add (``POST /v3/memories/add/``) and waits for it, ``--trials``
times one after the other while A's backlog is still queued; reported: B's accept->done (the event's
``latency_ms``) p50 and max, in model latencies too. A's backlog is inserted as accepted jobs (the runners
hear of them through the recovery sweep: on Celery, one queue message each, all ahead of B's) and cancelled
after B's trials. Also: A's adds/s alone (40 adds, distinct scopes), and the cost of one fair claim
(`ClaimRepository.claim_next`, rolled back) with 10,000 open adds (distinct scopes, then one scope), p50/p95.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from tests.fakes.openai_server import FakeOpenAI, echo_extractor, running
from tests.worker import jobs_harness as h

from harness import ROOT
from harness.postgres import PostgresRun
from harness.server import served
from memserver.domain.jobs import JobKind
from memserver.storage.db import Database

SHAPES = ("scopes", "one-scope")

_BACKLOG = text(
    """
    WITH p AS (
        SELECT g, jsonb_build_object(
                   'messages', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'A backlog fact ' || g)),
                   'user_id', CASE WHEN :one THEN 'a-backlog' ELSE 'a-backlog-' || g END) AS payload
        FROM generate_series(1, :n) g)
    INSERT INTO events (id, project_id, event_type, status, payload, scope_key, created_at, not_before)
    SELECT gen_random_uuid(), :project, 'ADD', 'PENDING', payload,
           md5(jsonb_build_array(payload ->> 'user_id', payload ->> 'agent_id', payload ->> 'app_id',
                                 payload ->> 'run_id')::text),
           clock_timestamp(), CASE WHEN :block AND g > 1 THEN 'infinity'::timestamptz END  -- as jobs.submit does
    FROM p ORDER BY g
    """
)


_MARKS_BLOCKED = text(
    "SELECT count(*) FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'batch_id'"
)


def log(msg: str) -> None:
    print(f"[jobs-fairness {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def insert_backlog(url: str, project: str, n: int, *, one_scope: bool) -> None:
    """A's backlog as accepted adds nobody has been handed yet: the sweeps hand them out (woken at once)."""
    if n == 0:
        return
    db = Database(url)
    try:
        async with db.transaction() as conn:
            # A scope's waiting adds are blocked until their turn (since 0014_event_batches; before: not marked).
            marks = bool((await conn.execute(_MARKS_BLOCKED)).scalar_one())
            await conn.execute(_BACKLOG, {"project": project, "n": n, "one": one_scope, "block": one_scope and marks})
            await conn.execute(text("SELECT pg_notify('memserver_jobs', '')"))
    finally:
        await db.dispose()


async def cancel_open(url: str, project: str) -> None:
    """End A's remaining backlog (FAILED, not run) and wait until A runs nothing."""
    db = Database(url)
    try:
        async with db.connect() as conn:
            await conn.execute(
                text(
                    "UPDATE events SET status = 'FAILED', error = 'bench: cancelled', completed_at = now() "
                    "WHERE project_id = :p AND status = 'PENDING'"
                ),
                {"p": project},
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with db.connect() as conn:
                q = "SELECT count(*) FROM events WHERE project_id = :p AND status IN ('PENDING', 'RUNNING')"
                if not (await conn.execute(text(q), {"p": project})).scalar_one():
                    return
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


def b_trial(server_url: str, key: str, timeout_s: float) -> float | None:
    """B's one add, accepted and done; its accept->done in ms as the server recorded it (None: timed out)."""
    with httpx.Client(base_url=server_url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
        r = api.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": f"I like tea {uuid.uuid4().hex[:6]}"}], "user_id": "b"},
        )
        r.raise_for_status()
        event = r.json()["event_id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ev = api.get(f"/v1/event/{event}/").json()
            if ev["status"] not in ("PENDING", "RUNNING"):
                return float(ev["latency"]) if ev.get("latency") is not None else None
            time.sleep(0.02)
    return None


def a_alone(server_url: str, url: str, key: str, n: int) -> float:
    """A's adds/s with nobody else: n async adds in distinct scopes, accepted -> last done."""
    with httpx.Client(base_url=server_url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
        tag = uuid.uuid4().hex[:6]
        ids = []
        for i in range(n):
            r = api.post(
                "/v3/memories/add/",
                json={"messages": [{"role": "user", "content": f"alone {tag} {i}"}], "user_id": f"alone-{tag}-{i}"},
            )
            r.raise_for_status()
            ids.append(r.json()["event_id"])
    rows = asyncio.run(_wait(url, ids))
    span = (max(r.completed_at for r in rows) - min(r.created_at for r in rows)).total_seconds()
    return round(n / span, 2)


async def _wait(url: str, ids: list[str]) -> list[Any]:
    db = Database(url)
    try:
        while True:
            async with db.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT status, created_at, completed_at FROM events WHERE id = ANY(CAST(:ids AS uuid[]))"
                        ),
                        {"ids": ids},
                    )
                ).all()
            if all(r.status in ("SUCCEEDED", "FAILED") for r in rows):
                return list(rows)
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


def measure_runner(label: str, server_url: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    a_project, _ = h.make_tenant(url)
    _, b_key = h.make_tenant(url)
    _, alone_key = h.make_tenant(url)
    model_ms = args.model_ms
    out: dict[str, Any] = {"runner": label, "a_alone_adds_per_s": a_alone(server_url, url, alone_key, args.alone)}
    log(f"{label}: A alone {out['a_alone_adds_per_s']} adds/s")
    rows = []
    for shape in SHAPES:
        for backlog in args.backlogs:
            asyncio.run(insert_backlog(url, a_project, backlog, one_scope=shape == "one-scope"))
            time.sleep(1.0)  # A's jobs are handed out and running
            lat = [b_trial(server_url, b_key, args.trial_timeout_s) for _ in range(args.trials)]
            asyncio.run(cancel_open(url, a_project))
            done = [x for x in lat if x is not None]
            row = {
                "shape": shape,
                "a_backlog": backlog,
                "b_trials": len(lat),
                "b_timed_out": len(lat) - len(done),
                "b_p50_ms": round(statistics.median(done), 1) if done else None,
                "b_max_ms": round(max(done), 1) if done else None,
                "b_max_model_latencies": round(max(done) / model_ms, 1) if done else None,
            }
            log(f"{label}: {json.dumps(row)}")
            rows.append(row)
    out["b_vs_backlog"] = rows
    return out


async def claim_cost(url: str, n: int, samples: int) -> list[dict[str, Any]]:
    """One fair claim (rolled back, so every sample sees the same queue) with n open adds of project A (in
    distinct scopes, then in one scope) and one of project B."""
    from memserver.storage.repositories.job_claims import ClaimRepository

    out = []
    for shape in SHAPES:
        a_project, _ = h.make_tenant(url)
        b_project, _ = h.make_tenant(url)
        await insert_backlog(url, a_project, n, one_scope=shape == "one-scope")
        await insert_backlog(url, b_project, 1, one_scope=True)
        db = Database(url)
        times = []
        kinds = [k for k in JobKind if k is not JobKind.WEBHOOK]
        maxes = {k.value: 5 for k in JobKind}
        try:
            for _ in range(samples):
                async with db.engine.connect() as conn:
                    t0 = time.perf_counter()
                    async with conn.begin() as tx:
                        job = await ClaimRepository(conn).claim_next(
                            kinds=kinds, owner="bench", lease_s=30, max_attempts=maxes
                        )
                        await tx.rollback()
                    times.append(1000 * (time.perf_counter() - t0))
                assert job is not None
            async with db.connect() as conn:
                await conn.execute(
                    text("DELETE FROM events WHERE project_id IN (:a, :b)"), {"a": a_project, "b": b_project}
                )
        finally:
            await db.dispose()
        s = sorted(times)
        row = {
            "shape": shape,
            "open_adds": n + 1,
            "claim_p50_ms": round(s[len(s) // 2], 2),
            "claim_p95_ms": round(s[int(0.95 * len(s))], 2),
        }
        log(f"claim cost: {json.dumps(row)}")
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.jobs --fairness", description=__doc__)
    p.add_argument("--fairness", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backlogs", type=lambda s: [int(x) for x in s.split(",")], default=[0, 100, 1000])
    p.add_argument("--trials", type=int, default=5, help="B's adds per backlog (one after the other)")
    p.add_argument("--model-ms", type=float, default=250.0, help="the scripted model's time per chat request")
    p.add_argument("--runners", default="inprocess,celery")
    p.add_argument("--alone", type=int, default=40, help="A's adds for the adds/s alone")
    p.add_argument("--trial-timeout-s", type=float, default=120.0)
    p.add_argument("--claim-rows", type=int, default=10_000, help="open adds for the claim cost (0: skip)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "jobs_fairness.json")
    args = p.parse_args(argv)

    def slow(body: dict[str, Any]) -> str:
        time.sleep(args.model_ms / 1000)
        return echo_extractor(body)

    tmp = Path(tempfile.mkdtemp(prefix="memserver-fairness-"))
    results: dict[str, Any] = {"loadavg_start": os.getloadavg(), "args": {k: str(v) for k, v in vars(args).items()}}
    runners = [r for r in args.runners.split(",") if r]
    with PostgresRun("memserver-fairness-", fast=True) as run, running(FakeOpenAI(chat_script=slow)) as fake:
        url = run.migrate()
        env = {
            "MEMSERVER_LLM__BASE_URL": fake.url,
            "MEMSERVER_LLM__API_KEY": "sk-bench",
            "MEMSERVER_EMBEDDER__PROVIDER": "openai",
            "MEMSERVER_EMBEDDER__BASE_URL": fake.url,
            "MEMSERVER_EMBEDDER__API_KEY": "sk-bench",
            "MEMSERVER_WORKER__POLL_INTERVAL_S": "0.5",
            "MEMSERVER_WORKER__MAX_PENDING_PER_PROJECT": "100000",
        }
        measured = []
        if "inprocess" in runners:
            with served(url, tmp / "inproc.log", **env) as server:
                measured.append(measure_runner("inprocess x4", server.url, url, args))
        if "celery" in runners:
            redis = h.Redis(tmp)
            redis.start()
            workers = [h.start_worker(url, redis.url, tmp / f"w{i}.log", **env) for i in range(2)]
            try:
                celery_env = {**env, "MEMSERVER_WORKER__RUNNER": "celery", "MEMSERVER_REDIS__URL": redis.url}
                with served(url, tmp / "celery-api.log", **celery_env) as server:
                    time.sleep(4)  # workers ready
                    measured.append(measure_runner("celery 2 workers", server.url, url, args))
            finally:
                for w in workers:
                    h.stop_worker(w)
                redis.stop()
        results["runners"] = measured
        if args.claim_rows:
            results["claim_cost"] = asyncio.run(claim_cost(url, args.claim_rows, 200))
    subprocess.run(["rm", "-rf", str(tmp)], check=False)
    results["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nB's single add (accept->done) against A's backlog; model {args.model_ms:g} ms per call")
    print(f"{'runner':<18} {'shape':<10} {'backlog':>7} {'p50 ms':>8} {'max ms':>8} {'max/model':>9} {'timeouts':>8}")
    for r in measured:
        for row in r["b_vs_backlog"]:
            print(
                f"{r['runner']:<18} {row['shape']:<10} {row['a_backlog']:>7} {row['b_p50_ms']!s:>8} "
                f"{row['b_max_ms']!s:>8} {row['b_max_model_latencies']!s:>9} {row['b_timed_out']:>8}"
            )
        print(f"{r['runner']:<18} A alone: {r['a_alone_adds_per_s']} adds/s")
    for row in results.get("claim_cost", []):
        print(
            f"claim_next, {row['open_adds']} open adds ({row['shape']}): "
            f"p50 {row['claim_p50_ms']} ms, p95 {row['claim_p95_ms']} ms"
        )
    print(f"\nloadavg {results['loadavg_start']} -> {results['loadavg_end']}; JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
