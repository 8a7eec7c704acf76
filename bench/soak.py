"""Load and soak: sustained mixed add/search traffic against one server, reported over time.

A private Postgres + `memserver serve` (or `--url/--key/--pid` of a running one) gets `--preload`
memories, then `--concurrency` clients send a mix of verbatim adds (`--add-share`) and hybrid searches
for `--duration` seconds, each client one request at a time. Every `--interval` seconds a row: requests/s,
error rate (non-2xx or transport errors), p50/p95 latency of adds and of searches in that window, and
the server's RSS. At the end: totals, and whether RSS stayed flat (growth between the second window and
the last, which excludes start-up warm-up).

    .venv/bin/python bench/soak.py                          # 5 minutes, concurrency 8
    .venv/bin/python bench/soak.py --duration 60 --interval 10 --concurrency 4    # brief run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness import ROOT

WORDS = (
    "alice bob carol dave erin frank grace austin berlin paris tokyo moved visited bought cooked painted "
    "adopted started finished joined dog cat guitar piano marathon garden kitchen novel camera bicycle "
    "sister brother friend colleague teacher yesterday weekend summer winter july really often never"
).split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))], 1)


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


async def run(args: argparse.Namespace, url: str, key: str, pid: int | None) -> dict[str, Any]:
    users = [f"soak-{i}" for i in range(args.users)]
    events: list[tuple[float, str, float, bool]] = []  # (time, kind, ms, ok)
    limits = httpx.Limits(max_connections=args.concurrency + 2)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Token {key}"}, timeout=60, limits=limits
    ) as c:
        rng = random.Random(args.seed)
        for i in range(args.preload):
            r = await c.post(
                "/v3/memories/add/",
                json={
                    "messages": [{"role": "user", "content": f"{sentence(rng)} {i}"}],
                    "user_id": rng.choice(users),
                    "infer": False,
                },
            )
            r.raise_for_status()
        start = time.monotonic()
        stop_at = start + args.duration

        async def client(n: int) -> None:
            crng = random.Random(args.seed * 1000 + n)
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                kind = "add" if crng.random() < args.add_share else "search"
                if kind == "add":
                    body: dict[str, Any] = {
                        "messages": [{"role": "user", "content": f"{sentence(crng)} c{n} #{i}"}],
                        "user_id": crng.choice(users),
                        "infer": False,
                    }
                    path = "/v3/memories/add/"
                else:
                    body = {"query": f"{sentence(crng)} {i}", "filters": {"user_id": crng.choice(users)}, "top_k": 10}
                    path = "/v3/memories/search/"
                t0 = time.perf_counter()
                try:
                    r = await c.post(path, json=body)
                    ok = r.status_code < 300
                except httpx.HTTPError:
                    ok = False
                events.append((time.monotonic() - start, kind, (time.perf_counter() - t0) * 1000, ok))

        async def sampler(samples: list[tuple[float, float | None]]) -> None:
            while time.monotonic() < stop_at:
                samples.append((time.monotonic() - start, rss_mb(pid)))
                await asyncio.sleep(min(args.interval / 2, 5))

        rss_samples: list[tuple[float, float | None]] = []
        await asyncio.gather(sampler(rss_samples), *(client(n) for n in range(args.concurrency)))
    windows = []
    w = 0.0
    while w < args.duration:
        in_w = [e for e in events if w <= e[0] < w + args.interval]
        adds = [e[2] for e in in_w if e[1] == "add"]
        searches = [e[2] for e in in_w if e[1] == "search"]
        errors = sum(1 for e in in_w if not e[3])
        rss = [r for t, r in rss_samples if w <= t < w + args.interval and r is not None]
        windows.append(
            {
                "t_s": int(w),
                "rps": round(len(in_w) / args.interval, 1),
                "error_rate": round(errors / len(in_w), 4) if in_w else None,
                "add_p50_ms": pct(adds, 50),
                "add_p95_ms": pct(adds, 95),
                "search_p50_ms": pct(searches, 50),
                "search_p95_ms": pct(searches, 95),
                "rss_mb": max(rss) if rss else None,
            }
        )
        w += args.interval
    total_err = sum(1 for e in events if not e[3])
    rss_series = [x["rss_mb"] for x in windows if x["rss_mb"] is not None]
    growth = None
    if len(rss_series) >= 3:
        growth = round((rss_series[-1] - rss_series[1]) / rss_series[1] * 100, 1)
    return {
        "requests": len(events),
        "errors": total_err,
        "error_rate": round(total_err / len(events), 5) if events else None,
        "add": {
            "p50_ms": pct([e[2] for e in events if e[1] == "add"], 50),
            "p95_ms": pct([e[2] for e in events if e[1] == "add"], 95),
        },
        "search": {
            "p50_ms": pct([e[2] for e in events if e[1] == "search"], 50),
            "p95_ms": pct([e[2] for e in events if e[1] == "search"], 95),
        },
        "rss_growth_pct_after_first_window": growth,
        "windows": windows,
        "median_search_p95_ms": statistics.median([x["search_p95_ms"] for x in windows if x["search_p95_ms"]] or [0]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=300)
    p.add_argument("--interval", type=float, default=30)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--add-share", type=float, default=0.3)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--preload", type=int, default=500)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--url", help="a running server (default: start a private one)")
    p.add_argument("--key")
    p.add_argument("--pid", type=int, help="the running server's process id, for RSS")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = p.parse_args()
    load_start = os.getloadavg()
    if args.url:
        result = asyncio.run(run(args, args.url, args.key, args.pid))
    else:
        from harness.server import free_port, served
        from harness.tenants import new_tenant
        from memserver.embedded_postgres import EmbeddedPostgres
        from memserver.storage import migrate

        with tempfile.TemporaryDirectory(prefix="memserver-soak-", dir="/tmp") as tmp:
            os.chmod(tmp, 0o755)
            pg = EmbeddedPostgres(Path(tmp) / "pg", port=free_port())
            pg.start()
            try:
                url = pg.url()
                migrate.upgrade(url, 384)

                _, key = asyncio.run(new_tenant(url, "bench", f"soak-{time.time_ns()}"))
                with served(url, Path(tmp) / "memserver.log") as server:
                    result = asyncio.run(run(args, server.url, key, server.proc.pid))
            finally:
                pg.stop()
    result.update(
        duration_s=args.duration,
        concurrency=args.concurrency,
        add_share=args.add_share,
        load_avg_start=load_start,
        load_avg_end=os.getloadavg(),
        when=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(
        f"{'t (s)':>6} {'req/s':>7} {'errors':>7} {'add p50':>8} {'p95':>7} {'search p50':>11} {'p95':>7} {'RSS MB':>8}"
    )
    for x in result["windows"]:
        print(
            f"{x['t_s']:>6} {x['rps']:>7} {x['error_rate']!s:>7} {x['add_p50_ms']!s:>8} {x['add_p95_ms']!s:>7} "
            f"{x['search_p50_ms']!s:>11} {x['search_p95_ms']!s:>7} {x['rss_mb']!s:>8}"
        )
    print(
        f"{result['requests']} requests, error rate {result['error_rate']}; add p95 {result['add']['p95_ms']} ms, "
        f"search p95 {result['search']['p95_ms']} ms; RSS growth after the first window "
        f"{result['rss_growth_pct_after_first_window']}%; JSON: {args.out}"
    )


if __name__ == "__main__":
    main()
