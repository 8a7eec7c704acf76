"""What `rerank: true` adds to a search, per option, against local fakes with their own time subtracted.

A private Postgres holds LoCoMo turns of one user (1,000 memories, added verbatim through the v3 API). For each
option a fresh `memserver serve` (embedding cache off, so every search embeds its query) answers the same
unique questions (top_k 10, concurrency 1, after unmeasured warm-up questions), each asked with `rerank: false`
and `rerank: true`, alternating which goes first so both meet the same load:

* `diversity`: no reranker configured (MEMSERVER_RERANK__PROVIDER=none), the pool of 50 diversified;
* `http-cohere`, `http-voyage`, `http-tei`: the fake /rerank server (`tests/fakes/rerank_server.py`, answering
  at once), the best 30 hits sent;
* `llm`: the fake OpenAI-compatible server answering the listwise prompt (20 hits shown) at once, through the
  real `openai` SDK.

Each `rerank: true` latency has the fake's own handling time of that request subtracted (its `/_stats` before
and after), so what remains is memserver's cost: building the request, the HTTP round trip on loopback, reading
the reply, reordering. Reported per option: p50/p95 of `rerank: false`, of `rerank: true` (net), and of their
per-question difference. Then an outage: a reranker that never answers (the default 2 s deadline), showing
the three searches that open the breaker and the cost of the searches while it is open.

No quality figure: the fakes score by word overlap or by script, not like a model.

    .venv/bin/python -m bench.rerank                    # conv-26 + conv-41, 200 questions per option
    .venv/bin/python -m bench.rerank --queries 60       # a quicker run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.openai_server import running as running_llm
from tests.fakes.rerank_server import FakeReranker, overlap_scores, running

from bench.hybrid_latency import DATA, load_conversation
from harness import ROOT
from harness.server import free_port, served
from harness.stats import percentile

OPTIONS = ("diversity", "http-cohere", "http-voyage", "http-tei", "llm")
PATHS = {"cohere": "/v1/rerank", "voyage": "/voyage/v1/rerank", "tei": "/rerank"}
_LINE = re.compile(r"^(\d+)\. (.*)$", re.MULTILINE)


def rank_by_overlap(body: dict[str, Any]) -> str:
    """The fake LLM's answer to the listwise prompt: the refs ordered by query-word overlap."""
    prompt = str(body["messages"][-1]["content"])
    query = prompt.split("\n", 1)[0].removeprefix("Query: ")
    lines = [(int(n), text) for n, text in _LINE.findall(prompt.split("\n\nMemories:\n", 1)[-1])]
    scores = overlap_scores(query, [t for _, t in lines])
    ranked = [n for (n, _), _ in sorted(zip(lines, scores, strict=True), key=lambda p: -p[1])]
    return json.dumps({"ranking": ranked})


def turns_of(path: Path, conversations: list[str], n: int) -> tuple[list[dict[str, Any]], list[str]]:
    turns: list[dict[str, Any]] = []
    questions: list[str] = []
    for conv in conversations:
        t, q = load_conversation(path, conv)
        turns += t
        questions += q
    return turns[:n], list(dict.fromkeys(questions))


async def ingest(url: str, key: str, turns: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=120) as c:
        for i in range(0, len(turns), 100):
            batch = turns[i : i + 100]
            body = {"messages": [{"role": "user", "content": t["text"]} for t in batch], "user_id": "bench"}
            r = await c.post("/v3/memories/add/", json=body | {"infer": False})
            r.raise_for_status()


async def measure(
    url: str, key: str, questions: list[str], warmup: list[str], fake_ms: Callable[[], float]
) -> dict[str, Any]:
    """Each question with rerank false and true (alternating order); true's latency less the fake's time."""
    lat: dict[str, list[float]] = {"false": [], "true": [], "added": []}
    labels: set[str] = set()

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=60) as c:

        async def one(q: str, rerank: bool) -> float:
            before = fake_ms()
            t0 = time.perf_counter()
            r = await c.post(
                "/v3/memories/search/",
                json={"query": q, "filters": {"user_id": "bench"}, "top_k": 10, "threshold": 0, "rerank": rerank},
            )
            dt = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            if rerank:
                labels.update(f"{h['reranker']}:{h['rerank_error']}" for h in r.json()["results"])
            return dt - (fake_ms() - before)

        for q in warmup:
            await one(q, True)
            await one(q, False)
        labels.clear()
        for i, q in enumerate(questions):
            pair: dict[bool, float] = {}
            for rerank in (False, True) if i % 2 == 0 else (True, False):
                pair[rerank] = await one(q, rerank)
            lat["false"].append(pair[False])
            lat["true"].append(pair[True])
            lat["added"].append(pair[True] - pair[False])
    row: dict[str, Any] = {
        k: {"p50_ms": round(statistics.median(v), 2), "p95_ms": round(percentile(v, 0.95), 2)} for k, v in lat.items()
    }
    row["n"] = len(questions)
    row["labels"] = sorted(labels)
    return row


async def outage(url: str, key: str, questions: list[str]) -> dict[str, Any]:
    """A reranker that never answers: the searches that open the breaker, then those while it is open."""
    out: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=60) as c:
        for q in questions:
            t0 = time.perf_counter()
            r = await c.post(
                "/v3/memories/search/",
                json={"query": q, "filters": {"user_id": "bench"}, "threshold": 0, "rerank": True},
            )
            out.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            error = r.json()["results"][0]["rerank_error"] if r.json()["results"] else None
            assert error, r.text
    return {
        "first_3_ms": [round(x, 1) for x in out[:3]],
        "breaker_open": {"p50_ms": round(statistics.median(out[3:]), 2), "p95_ms": round(percentile(out[3:], 0.95), 2)},
        "n": len(out),
    }


@contextmanager
def option(name: str, rerank: FakeReranker, llm: FakeOpenAI) -> Iterator[tuple[dict[str, str], Callable[[], float]]]:
    """The memserver settings of an option and a reader of its fake's handling time so far (ms)."""
    if name == "diversity":
        yield {}, lambda: 0.0
    elif name == "llm":
        env = {"MEMSERVER_LLM__BASE_URL": llm.url, "MEMSERVER_LLM__MODEL": "fake", "MEMSERVER_RERANK__PROVIDER": "llm"}
        yield env, lambda: float(llm.stats_snapshot()["chat_handling_ms"])
    else:
        api = name.removeprefix("http-")
        env = {"MEMSERVER_RERANK__PROVIDER": "http", "MEMSERVER_RERANK__URL": rerank.url + PATHS[api]}
        yield env | {"MEMSERVER_RERANK__API": api}, lambda: float(rerank.stats()["handling_ms"])


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from harness.tenants import new_tenant
    from memserver.embedded_postgres import EmbeddedPostgres
    from memserver.storage import migrate

    turns, questions = turns_of(args.data, args.conversations, args.memories)
    rng = random.Random(args.seed)
    rng.shuffle(questions)
    warmup, measured = questions[:20], questions[20 : 20 + args.queries]
    results: dict[str, Any] = {"memories": len(turns), "options": {}}
    pg = EmbeddedPostgres(workdir / "pg", port=free_port())
    pg.start()
    try:
        url = pg.url()
        migrate.upgrade(url, 384)
        _, key = asyncio.run(new_tenant(url, "bench", f"rerank-{time.time_ns()}"))
        base = {"MEMSERVER_EMBEDDER__CACHE_SIZE": "0"}
        with ExitStack() as stack:
            rerank = stack.enter_context(running(FakeReranker()))
            llm = stack.enter_context(running_llm(FakeOpenAI(chat_script=rank_by_overlap)))
            with served(url, workdir / "ingest.log", **base) as server:
                asyncio.run(ingest(server.url, key, turns))
            for name in args.options:
                with (
                    option(name, rerank, llm) as (env, fake_ms),
                    served(url, workdir / f"{name}.log", **base, **env) as s,
                ):
                    results["options"][name] = asyncio.run(measure(s.url, key, measured, warmup, fake_ms))
                print(f"  {name}: {results['options'][name]}", flush=True)
            hanging = stack.enter_context(running(FakeReranker(hang_next=10**6, hang_s=3.0)))
            env = {"MEMSERVER_RERANK__PROVIDER": "http", "MEMSERVER_RERANK__URL": hanging.url + PATHS["cohere"]}
            with served(url, workdir / "outage.log", **base, **env) as s:
                results["outage"] = asyncio.run(outage(s.url, key, measured[:53]))
    finally:
        pg.stop()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--conversations", nargs="+", default=["conv-26", "conv-41"])
    p.add_argument("--memories", type=int, default=1000)
    p.add_argument("--queries", type=int, default=200, help="unique questions per option")
    p.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rerank.json")
    args = p.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="memserver-rerank-", dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)  # the embedded Postgres runs as an unprivileged user
        result = run(args, Path(tmp))
    result.update(load_avg_start=load_before, load_avg_end=os.getloadavg(), when=datetime.now(UTC).isoformat())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{result['memories']} memories of one user, top_k 10, concurrency 1, fakes answering at once")
    print(f"{'option':<12} {'false p50':>9} {'p95':>7} {'true p50':>9} {'p95':>7} {'added p50':>9} {'p95':>7}  labels")
    for name, row in result["options"].items():
        f, t, a = row["false"], row["true"], row["added"]
        print(
            f"{name:<12} {f['p50_ms']:>9} {f['p95_ms']:>7} {t['p50_ms']:>9} {t['p95_ms']:>7} "
            f"{a['p50_ms']:>9} {a['p95_ms']:>7}  {', '.join(row['labels'])}"
        )
    o = result["outage"]
    print(
        f"outage (2 s deadline): first three {o['first_3_ms']} ms, then breaker open p50/p95 "
        f"{o['breaker_open']['p50_ms']}/{o['breaker_open']['p95_ms']} ms"
    )
    print(f"load average: start {load_before[0]:.1f}, end {result['load_avg_end'][0]:.1f}; JSON: {args.out}")


if __name__ == "__main__":
    main()
