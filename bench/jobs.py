"""Job machinery benchmark: asynchronous add throughput and accept-to-done latency per runner, and
webhook delivery latency.

1. **Async adds** through HTTP (``POST /v3/memories/add/`` with ``infer: true``, one user message, a
   different user per add so per-scope ordering does not serialise them), ``--concurrency`` clients at
   once, against: the in-process runner (one API process), and the Celery runner (an API process plus
   1, 2 and 4 ``memserver worker --concurrency 1`` processes over a private Redis). Measured: accepted
   adds/s at the API, and for each job ``latency_ms`` as the server records it (``completed_at -
   created_at``: accept to done, p50/p95), and end-to-end throughput (jobs / (last completion - first
   accept)). The LLM and embedder are the instant fake OpenAI-compatible server. Until the LLM
   pipeline lands an ``infer: true`` job ends FAILED ("extraction unavailable") straight away, so this
   measures the machinery (accept, hand-off, claim under a lease, finish), not extraction.
2. **Webhook delivery latency**: a webhook on a local receiver, ``--webhook-adds`` verbatim adds one by
   one; latency = receiver arrival - add response, p50/p95, at the default sweep interval and a short one
   (deliveries are an outbox: Postgres notifies the runners on commit, the poll is the fallback).

    .venv/bin/python bench/jobs.py                 # about 3 minutes on 2 cores
    .venv/bin/python bench/jobs.py --adds 100 --workers 1,2
    .venv/bin/python -m bench.jobs --fairness      # a quiet project's add against a backlog: bench/jobs_fairness.py
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
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from tests.fakes.openai_server import FakeOpenAI, running
from tests.worker import jobs_harness as h

from harness import ROOT
from harness.server import served
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage import migrate
from memserver.storage.db import Database


def log(msg: str) -> None:
    print(f"[jobs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1)


async def post_adds(url: str, key: str, n: int, concurrency: int, tag: str) -> tuple[list[str], float]:
    """n async adds, `concurrency` at a time; returns the event ids and the wall time of accepting them."""
    ids: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=60) as c:

        async def one(i: int) -> None:
            async with sem:
                r = await c.post(
                    "/v3/memories/add/",
                    json={"messages": [{"role": "user", "content": f"{tag} fact {i}"}], "user_id": f"{tag}-u{i}"},
                )
                r.raise_for_status()
                ids.append(r.json()["event_id"])

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return ids, time.perf_counter() - t0


async def wait_done(db_url: str, ids: list[str], limit_s: float = 300) -> list[Any]:
    db = Database(db_url)
    try:
        deadline = time.monotonic() + limit_s
        while True:
            async with db.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT status, latency_ms, created_at, completed_at, attempts FROM events "
                            "WHERE id = ANY(CAST(:ids AS uuid[]))"
                        ),
                        {"ids": ids},
                    )
                ).all()
            if all(r.status in ("SUCCEEDED", "FAILED") for r in rows) or time.monotonic() > deadline:
                return list(rows)
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


def run_adds(label: str, url: str, db_url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    ids, accept_s = asyncio.run(post_adds(url, key, args.adds, args.concurrency, f"{label}-{uuid.uuid4().hex[:4]}"))
    rows = asyncio.run(wait_done(db_url, ids))
    lat = [r.latency_ms for r in rows if r.latency_ms is not None]
    first = min(r.created_at for r in rows)
    last = max(r.completed_at for r in rows if r.completed_at is not None)
    span = (last - first).total_seconds()
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    out = {
        "runner": label,
        "adds": len(ids),
        "accepted_per_s": round(len(ids) / accept_s, 1),
        "done_per_s": round(len(rows) / span, 1) if span > 0 else None,
        "accept_to_done_p50_ms": pct(lat, 0.50),
        "accept_to_done_p95_ms": pct(lat, 0.95),
        "statuses": statuses,
        "max_attempts": max(r.attempts for r in rows),
    }
    log(json.dumps(out))
    return out


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        me = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                me.arrivals[body["event_details"]["data"]["memory"]] = time.time()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run_webhooks(db_url: str, env: dict[str, str], poll_s: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    project, key = h.make_tenant(db_url)
    receiver = Receiver()
    sent: dict[str, float] = {}
    try:
        with served(
            db_url,
            tmp / f"hooks-{poll_s}.log",
            **env,
            MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS="true",
            MEMSERVER_WORKER__POLL_INTERVAL_S=poll_s,
        ) as server:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
                r = api.post(
                    f"/api/v1/webhooks/projects/{project}/",
                    json={"url": receiver.url, "name": "bench", "event_types": ["memory_add"]},
                )
                r.raise_for_status()
                for i in range(args.webhook_adds):
                    memory = f"hook {poll_s} {i} {uuid.uuid4().hex[:6]}"
                    r = api.post(
                        "/v3/memories/add/",
                        json={"messages": [{"role": "user", "content": memory}], "user_id": "hooks", "infer": False},
                    )
                    r.raise_for_status()
                    sent[memory] = time.time()
                    time.sleep(args.webhook_gap_s)
            deadline = time.monotonic() + 60
            while len(receiver.arrivals) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        receiver.server.shutdown()
    lat = [1000 * (receiver.arrivals[m] - t) for m, t in sent.items() if m in receiver.arrivals]
    out = {
        "poll_interval_s": float(poll_s),
        "deliveries": len(lat),
        "sent": len(sent),
        "delivery_p50_ms": pct(lat, 0.5),
        "delivery_p95_ms": pct(lat, 0.95),
        "mean_ms": round(statistics.mean(lat), 1) if lat else None,
    }
    log(json.dumps(out))
    return out


def main(argv: list[str] | None = None) -> int:
    if "--fairness" in (sys.argv[1:] if argv is None else argv):  # a quiet project against a backlog
        from bench import jobs_fairness

        return jobs_fairness.main(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adds", type=int, default=200, help="async adds per runner configuration")
    p.add_argument("--concurrency", type=int, default=8, help="clients posting at once")
    p.add_argument("--workers", default="1,2,4", help="Celery worker counts to measure")
    p.add_argument("--webhook-adds", type=int, default=40)
    p.add_argument("--only-webhooks", action="store_true", help="skip the async add measurements")
    p.add_argument("--webhook-gap-s", type=float, default=0.1, help="pause between two webhook-triggering adds")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "jobs.json")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="memserver-jobs-bench-"))
    pg_dir = Path("/tmp") / f"memserver-jobs-bench-{os.getpid()}"
    pg = EmbeddedPostgres(pg_dir, fast=True)
    pg.start()
    redis = h.Redis(tmp)
    redis.start()
    results: dict[str, Any] = {"loadavg_start": os.getloadavg(), "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        db_url = pg.url()
        migrate.upgrade(db_url, 384)
        with running(FakeOpenAI()) as fake:
            env = {
                "MEMSERVER_EMBEDDER__PROVIDER": "openai",
                "MEMSERVER_EMBEDDER__BASE_URL": fake.url,
                "MEMSERVER_EMBEDDER__API_KEY": "sk-bench",
                "MEMSERVER_LLM__BASE_URL": fake.url,
                "MEMSERVER_LLM__API_KEY": "sk-bench",
                "MEMSERVER_WORKER__MAX_PENDING_PER_PROJECT": str(10 * args.adds),
            }
            adds: list[dict[str, Any]] = []
            if args.only_webhooks:
                args.workers = ""
            _, key = h.make_tenant(db_url)
            if not args.only_webhooks:
                with served(db_url, tmp / "inproc.log", **env) as server:
                    adds.append(run_adds("inprocess", server.url, db_url, key, args))
            celery_env = {**env, "MEMSERVER_WORKER__RUNNER": "celery", "MEMSERVER_REDIS__URL": redis.url}
            with served(db_url, tmp / "celery-api.log", **celery_env) as server:
                for n in [int(x) for x in args.workers.split(",") if x]:
                    workers = [h.start_worker(db_url, redis.url, tmp / f"w{n}-{i}.log", **env) for i in range(n)]
                    time.sleep(4 + n)  # workers ready
                    try:
                        _, key = h.make_tenant(db_url)
                        adds.append(run_adds(f"celery x{n}", server.url, db_url, key, args))
                    finally:
                        for w in workers:
                            h.stop_worker(w)
            results["adds"] = adds
            results["webhooks"] = [run_webhooks(db_url, env, s, args, tmp) for s in ("2.0", "0.2")]
    finally:
        redis.stop()
        pg.stop()
        subprocess.run(["rm", "-rf", str(pg_dir), str(tmp)], check=False)
    results["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\n{'runner':<12} {'adds':>5} {'accepted/s':>11} {'done/s':>8} {'p50 ms':>8} {'p95 ms':>8}  statuses")
    for a in results["adds"]:
        print(
            f"{a['runner']:<12} {a['adds']:>5} {a['accepted_per_s']:>11} {a['done_per_s']!s:>8} "
            f"{a['accept_to_done_p50_ms']:>8} {a['accept_to_done_p95_ms']:>8}  {a['statuses']}"
        )
    print(f"\n{'webhook sweep':<14} {'deliveries':>10} {'p50 ms':>8} {'p95 ms':>8}")
    for w in results["webhooks"]:
        print(f"{w['poll_interval_s']:<14} {w['deliveries']:>10} {w['delivery_p50_ms']:>8} {w['delivery_p95_ms']:>8}")
    print(f"\nloadavg {results['loadavg_start']} -> {results['loadavg_end']}; JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
