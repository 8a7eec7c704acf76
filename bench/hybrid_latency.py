"""Hybrid search latency against dense-only, from a fresh start over plain HTTP (issue 13, point 10).

A private Postgres + `memserver serve` (embedding cache off, so no query is answered from it) holds one
LoCoMo conversation (~700 memories, one user, added in order through the v3 API). Then, per query
length (the conversation's own questions, and 15-, 30- and 50-word queries built from its words), every
query is unique and asked once with the default hybrid retrieval and once with `retrieval: "semantic"`
(dense only), interleaved so both meet the same machine load, top_k 10, concurrency 1, after a short
warm-up of other unique queries. Reported: p50/p95 per mode and the hybrid/dense p95 ratio (target
<= 1.5 for queries up to 50 words).

    .venv/bin/python bench/hybrid_latency.py                      # conv-26, 200 queries per length
    .venv/bin/python bench/hybrid_latency.py --queries 60 --conversation conv-30

`--time` (issue 21): the cost of a time expression. Each unique question q is paired with `q + " " + expr`
(expr cycling through `TIME_EXPRESSIONS`), both hybrid, `reference_date` = the conversation's last session
(so the memories' parsed event periods and the expressions meet), interleaved, top_k 10, concurrency 1,
after warm-up. Reported: p50/p95 of both and the p95 ratio (target <= 1.10), and a control: q plus as many
words that name no time (the embedder's cost grows with the text).

    .venv/bin/python -m bench.hybrid_latency --time --queries 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness import ROOT

DATA = next(
    (
        p
        for p in (ROOT.parent / "shared" / "data" / "locomo-dev.json", Path("/work/shared/data/locomo-dev.json"))
        if p.exists()
    ),
    Path("/work/shared/data/locomo-dev.json"),
)
LENGTHS = (15, 30, 50)
# One of each family of the grammar (pipeline/time_expressions.py), cycled over the questions.
TIME_EXPRESSIONS = (
    "last week",
    "yesterday",
    "in May 2023",
    "two weeks ago",
    "last month",
    "recently",
    "in March",
    "between January and March 2023",
    "last summer",
    "on Friday",
    "this year",
    "3 days ago",
    "since 2022",
    "as of June 2023",
    "next week",
    "a few days ago",
)


def load_conversation(path: Path, sample_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    for conv in json.loads(path.read_text()):
        if conv["sample_id"] != sample_id:
            continue
        c = conv["conversation"]
        turns, n = [], 1
        while f"session_{n}" in c:
            when = datetime.strptime(c[f"session_{n}_date_time"], "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
            for t in c[f"session_{n}"]:
                text = f"{t['speaker']}: {t['text']}"
                if t.get("blip_caption"):
                    text += f" [shares a photo: {t['blip_caption']}]"
                turns.append({"text": text, "ts": int(when.timestamp()), "dia_id": t["dia_id"]})
            n += 1
        return turns, [q["question"] for q in conv["qa"]]
    raise SystemExit(f"no conversation {sample_id} in {path}")


def word_queries(turns: list[dict[str, Any]], words: int, count: int, rng: random.Random) -> list[str]:
    """Unique queries of exactly `words` words: a run of the conversation's own words (realistic terms,
    names and dates) starting at a random place, so no two queries are the same text."""
    vocab = " ".join(t["text"] for t in turns).split()
    out: set[str] = set()
    while len(out) < count:
        start = rng.randrange(0, len(vocab) - words)
        out.add(" ".join(vocab[start : start + words]))
    return sorted(out, key=lambda _: rng.random())


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


async def search(client: httpx.AsyncClient, query: str, mode: str, **extra: Any) -> float:
    body: dict[str, Any] = {"query": query, "filters": {"user_id": "bench"}, "top_k": 10, **extra}
    if mode == "semantic":
        body["retrieval"] = "semantic"
    t0 = time.perf_counter()
    r = await client.post("/v3/memories/search/", json=body)
    dt = (time.perf_counter() - t0) * 1000
    r.raise_for_status()
    return dt


async def ingest(client: httpx.AsyncClient, turns: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    for t in turns:
        r = await client.post(
            "/v3/memories/add/",
            json={
                "messages": [{"role": "user", "content": t["text"]}],
                "user_id": "bench",
                "infer": False,
                "metadata": {"dia_id": t["dia_id"]},
                "timestamp": t["ts"],
            },
        )
        r.raise_for_status()
    return time.perf_counter() - t0


def summary(lat: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(lat), 2), "p95_ms": round(pct(lat, 95), 2), "n": len(lat)}


PADDING = ("quartz", "nebula", "walrus", "tundra", "pillow", "harbor", "lantern", "copper")


async def run_time(
    url: str, key: str, turns: list[dict[str, Any]], questions: list[str], n: int, seed: int
) -> dict[str, Any]:
    """`--time`: each question alone and with a time expression, both hybrid, paired and interleaved."""
    reference = datetime.fromtimestamp(max(t["ts"] for t in turns), tz=UTC).date().isoformat()
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=60) as client:
        ingest_s = await ingest(client, turns)
        periods, page = 0, 1
        while True:  # how many of the turns name a time (their event periods meet the expressions)
            body = {"filters": {"user_id": "bench"}, "page": page, "page_size": 100}
            listed = (await client.post("/v3/memories/", json=body)).json()
            periods += sum(1 for m in listed["results"] if m.get("event_period"))
            if not listed.get("next"):
                break
            page += 1
        for q in word_queries(turns, 12, 20, random.Random(seed + 1)):  # warm-up: unique, not measured
            await search(client, "warm " + q, "hybrid", reference_date=reference)
            await search(client, f"warm {q} last week", "hybrid", reference_date=reference)
        lat: dict[str, list[float]] = {"plain": [], "with time": [], "same length": []}
        for i, q in enumerate(list(dict.fromkeys(questions))[:n]):
            expr = TIME_EXPRESSIONS[i % len(TIME_EXPRESSIONS)]
            # the control: as many words naming no time and absent from LoCoMo (the embedder's cost grows with
            # the text), so that the ratio to it is what reading the time costs
            padded = f"{q} {' '.join(PADDING[(i + k) % len(PADDING)] for k in range(len(expr.split())))}"
            trio = [("plain", q), ("with time", f"{q} {expr}"), ("same length", padded)]
            for name, query in trio[i % 3 :] + trio[: i % 3]:
                lat[name].append(await search(client, query, "hybrid", reference_date=reference))
    row: dict[str, Any] = {name: summary(v) for name, v in lat.items()}
    row["p95_ratio"] = round(row["with time"]["p95_ms"] / row["plain"]["p95_ms"], 3)
    row["p50_ratio"] = round(row["with time"]["p50_ms"] / row["plain"]["p50_ms"], 3)
    row["p95_ratio_same_length"] = round(row["with time"]["p95_ms"] / row["same length"]["p95_ms"], 3)
    row["p50_ratio_same_length"] = round(row["with time"]["p50_ms"] / row["same length"]["p50_ms"], 3)
    return {
        "memories": len(turns),
        "with_event_period": periods,
        "reference_date": reference,
        "ingest_s": round(ingest_s, 1),
        "results": {"time expressions": row},
    }


async def run(
    url: str, key: str, turns: list[dict[str, Any]], questions: list[str], n: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    headers = {"Authorization": f"Token {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        ingest_s = await ingest(client, turns)
        sets: dict[str, list[str]] = {"questions": list(dict.fromkeys(questions))[:n]}
        for w in LENGTHS:
            sets[f"{w} words"] = word_queries(turns, w, n, rng)
        for q in word_queries(turns, 12, 20, random.Random(seed + 1)):  # warm-up: unique, not measured
            await search(client, "warm " + q, "hybrid")
            await search(client, "warm " + q, "semantic")
        results: dict[str, Any] = {}
        for name, queries in sets.items():
            lat: dict[str, list[float]] = {"hybrid": [], "semantic": []}
            for i, q in enumerate(queries):
                order = ("hybrid", "semantic") if i % 2 == 0 else ("semantic", "hybrid")
                for mode in order:
                    lat[mode].append(await search(client, q, mode))  # the server's embedding cache is off
            row = {
                mode: {"p50_ms": round(statistics.median(v), 2), "p95_ms": round(pct(v, 95), 2), "n": len(v)}
                for mode, v in lat.items()
            }
            row["p95_ratio"] = round(row["hybrid"]["p95_ms"] / row["semantic"]["p95_ms"], 2)
            row["p50_ratio"] = round(row["hybrid"]["p50_ms"] / row["semantic"]["p50_ms"], 2)
            results[name] = row
    return {"memories": len(turns), "ingest_s": round(ingest_s, 1), "results": results}


@contextlib.contextmanager
def private_server(workdir: Path) -> Iterator[tuple[str, str]]:
    """A private embedded Postgres + `memserver serve` without an embedding cache; yields (URL, key)."""
    from harness.server import free_port, served
    from harness.tenants import new_tenant
    from memserver.embedded_postgres import EmbeddedPostgres
    from memserver.storage import migrate

    pg = EmbeddedPostgres(workdir / "pg", port=free_port())
    pg.start()
    try:
        url = pg.url()
        migrate.upgrade(url, 384)
        _, key = asyncio.run(new_tenant(url, "bench", f"hybrid-{time.time_ns()}"))
        with served(url, workdir / "memserver.log", MEMSERVER_EMBEDDER__CACHE_SIZE="0") as server:
            yield server.url, key
    finally:
        pg.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--conversation", default="conv-26")
    p.add_argument("--queries", type=int, default=200, help="unique queries per length")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--time", action="store_true", help="questions with and without a time expression")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    out = args.out or ROOT / "bench" / "results" / ("time_latency.json" if args.time else "hybrid_latency.json")
    turns, questions = load_conversation(args.data, args.conversation)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="memserver-hybrid-", dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)  # the embedded Postgres runs as an unprivileged user
        with private_server(Path(tmp)) as (url, key):
            runner = run_time if args.time else run
            result = asyncio.run(runner(url, key, turns, questions, args.queries, args.seed))
    result.update(
        conversation=args.conversation,
        load_avg_start=load_before,
        load_avg_end=os.getloadavg(),
        when=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{result['memories']} memories ({args.conversation}), top_k 10, concurrency 1, unique queries, no cache")
    a, b = ("plain", "with time") if args.time else ("hybrid", "semantic")
    print(f"{'queries':<16} {a + ' p50':>14} {'p95':>8} {b + ' p50':>14} {'p95':>8} {'p95 ratio':>10}")
    for name, row in result["results"].items():
        h, d = row[a], row[b]
        print(
            f"{name:<16} {h['p50_ms']:>14} {h['p95_ms']:>8} {d['p50_ms']:>14} {d['p95_ms']:>8} {row['p95_ratio']:>10}"
        )
        if "same length" in row:
            c = row["same length"]
            print(
                f"{'same length':<16} {c['p50_ms']:>14} {c['p95_ms']:>8}  with time / same length, p95: "
                f"{row['p95_ratio_same_length']}, p50: {row['p50_ratio_same_length']}"
            )
    print(f"load average: start {load_before[0]:.1f}, end {result['load_avg_end'][0]:.1f}; JSON: {out}")


if __name__ == "__main__":
    main()
