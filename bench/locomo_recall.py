"""LoCoMo-ER, mode A (raw turns): retrieval quality of memserver search, without an LLM.

Protocol (../shared/benchmarks.md §1): one namespace per conversation (user_id "locomo-<sample_id>");
every turn added in order through the public v3 API with infer=false, content "<speaker>: <text>"
(+ " [shares a photo: <caption>]"), metadata {"dia_id", "session"}, the session date as timestamp.
Each question goes verbatim to POST /v3/memories/search/ with filters {"user_id": ...}, top_k=50,
threshold=0; hits map to metadata.dia_id. Reported per category id, pooled over 1-4, and for 5:
frac@k, all@k (k in 1, 5, 10, 20, 50) and MRR; search latency p50/p95/p99 at concurrency 1 and 8;
ingest turns/s. In the same run: a plain BM25 baseline (k1=1.2, b=0.75, stop words removed,
computed here) and a dense-only run (the same server with retrieval="semantic").

    python -m bench.locomo_recall                       # starts its own memserver + Postgres
    python -m bench.locomo_recall --url http://127.0.0.1:8000 --key m0-...   # latency: run that server
                                                        # with MEMSERVER_EMBEDDER__CACHE_SIZE=0
    python -m bench.locomo_recall --conversations conv-26 --out result.json   # CI smoke

Mode B (`--mode B`, infer=true): each session's turns go as consecutive two-message exchanges (turn 2k as
`user`, 2k+1 as `assistant`; same user_id, content and session-date timestamp as mode A) through
POST /v3/memories/add/ with infer=true and metadata {"dia_ids": [...], "session": n}, one at a time, each
event polled until it ends. A retrieved memory covers an evidence turn when that turn is one of the
`provenance.sources[*].message_indices` of the add (event) that carried it. Same metrics, k counting
memories; plus memories per turn, LLM calls and prompt tokens per add (the events' metadata), and the
share of evidence that any stored memory covers (the ceiling of frac@k). Without --url, the private
server's LLM is the scripted echo fake (one fact per user message, verbatim): that proves the plumbing
end to end and is NOT a quality figure; point --url at a server with a real model for one.

    python -m bench.locomo_recall --mode B --conversations conv-26            # echo fake, ~1 minute

Graph-aware search (`--graph 0.2,0.5`, mode B, private server only): the adds carry enable_graph=true and
the echo fake also answers heuristic relations, (speaker, mentions, name) for each capitalised run of words
that does not start a sentence (tests/fakes/openai_server.py `heuristic_mentions`: NOT a model's graph).
The questions then also go, paired, to one more server per weight on the same database, started with
MEMSERVER_SEARCH__GRAPH_WEIGHT=<w> (system "graph@<w>"; the plain "hybrid" server has the weight 0).

    python -m bench.locomo_recall --mode B --graph 0.2,0.5 --conversations conv-26

(from the repository root, with the project's virtualenv).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.locomo_data import (
    DEFAULT_DATA,
    KS,
    MODES,
    aggregate,
    bm25_rank,
    load,
    score_covered,
    score_question,
)

# The shared data folder sits next to the repository; a clone elsewhere finds it at /work/shared.
from bench.locomo_infer import Covers, inferred_summary, ingest_inferred, provenance_covers, stored_coverage
from harness import ROOT
from harness.stats import nearest_rank


# ----------------------------------------------------------------------------------------------
# against memserver
# ----------------------------------------------------------------------------------------------
async def ingest(client: httpx.AsyncClient, conv: dict[str, Any], user: str) -> None:
    """Turns in order, one add each (the protocol's per-turn metadata needs one request per turn)."""
    for t in conv["turns"]:
        r = await client.post(
            "/v3/memories/add/",
            json={
                "messages": [{"role": "user", "content": t["text"]}],
                "user_id": user,
                "infer": False,
                "metadata": {"dia_id": t["dia_id"], "session": t["session"]},
                "timestamp": t["ts"],
            },
        )
        r.raise_for_status()
        assert r.json()["status"] == "SUCCEEDED", r.text


def turn_of(hit: dict[str, Any]) -> set[str]:
    """Mode A: a verbatim memory is its turn."""
    return {hit["metadata"]["dia_id"]}


async def search(
    client: httpx.AsyncClient,
    query: str,
    user: str,
    mode: str,
    covers: Covers = turn_of,
    reference_date: str | None = None,
) -> tuple[list[set[str]], float]:
    body: dict[str, Any] = {"query": query, "filters": {"user_id": user}, "top_k": 50, "threshold": 0}
    if reference_date is not None:  # --reference-date: "now" for the times a question names
        body["reference_date"] = reference_date
    if mode in MODES and mode != "hybrid":  # graph@w: hybrid, on the server with that weight
        body["retrieval"] = mode
    t0 = time.perf_counter()
    r = await client.post("/v3/memories/search/", json=body)
    dt = (time.perf_counter() - t0) * 1000
    r.raise_for_status()
    return [covers(h) for h in r.json()["results"]], dt


async def run(
    url: str,
    key: str,
    convs: list[dict[str, Any]],
    concurrency: int,
    mode: str = "A",
    graph_urls: dict[str, str] | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """graph_urls: system name ("graph@w") -> a server on the same database with that graph weight.
    reference "last-session": each question's `reference_date` is the day of its conversation's last session."""
    run_id = f"{int(time.time())}"
    refs = {
        c["id"]: datetime.fromtimestamp(max(t["ts"] for t in c["turns"]), tz=UTC).date().isoformat()
        for c in convs
        if reference == "last-session"
    }
    graph_urls = graph_urls or {}
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=url, headers={"Authorization": f"Token {key}"}, timeout=120, limits=limits)
        )
        clients = dict.fromkeys(MODES, client) | {
            name: await stack.enter_async_context(
                httpx.AsyncClient(base_url=u, headers={"Authorization": f"Token {key}"}, timeout=120, limits=limits)
            )
            for name, u in graph_urls.items()
        }
        modes = tuple(clients)
        users = {c["id"]: f"locomo-{c['id']}-{run_id}" for c in convs}
        n_turns = sum(len(c["turns"]) for c in convs)
        covers: Covers = turn_of
        t0 = time.perf_counter()
        if mode == "B":
            per_conv = await asyncio.gather(
                *(ingest_inferred(client, c, users[c["id"]], graph=bool(graph_urls)) for c in convs)
            )
            ingest_s = time.perf_counter() - t0
            records = [r for rs in per_conv for r in rs]
            covers = provenance_covers({r["event_id"]: r["dia_ids"] for r in records})
            results: dict[str, Any] = {"inferred": inferred_summary(records, n_turns, ingest_s), "adds": records}
            # The ceiling any retrieval can reach: the share of a question's evidence turns that some stored
            # memory covers at all (an extractor that skips a turn loses it before search starts).
            stored = await asyncio.gather(*(stored_coverage(client, users[c["id"]], covers) for c in convs))
            reach = [
                (q["cat"], len(set(q["gold"]) & turns) / len(q["gold"]))
                for c, (_, turns) in zip(convs, stored, strict=True)
                for q in c["questions"]
            ]
            pooled = [x for cat, x in reach if cat != 5]
            results["inferred"] |= {
                "memories_listed": sum(n for n, _ in stored),
                "turns_covered_by_some_memory": round(sum(len(t) for _, t in stored) / n_turns, 3),
                "evidence_reachable_1_4": round(statistics.fmean(pooled), 4) if pooled else None,
                "evidence_reachable_5": round(statistics.fmean(x for cat, x in reach if cat == 5), 4)
                if any(cat == 5 for cat, _ in reach)
                else None,
            }
        else:
            await asyncio.gather(*(ingest(client, c, users[c["id"]]) for c in convs))
            ingest_s = time.perf_counter() - t0
            results = {}
        results["ingest"] = {
            "turns": n_turns,
            "seconds": round(ingest_s, 2),
            "turns_per_s": round(n_turns / ingest_s, 1),
        }
        jobs = [(c, q) for c in convs for q in c["questions"]]
        for retrieval in modes:
            await search(clients[retrieval], jobs[0][1]["q"], users[jobs[0][0]["id"]], retrieval, covers)  # warm
        # Concurrency 1, quality and latency: every question goes to every mode back to back (the order
        # alternating), so the modes' latencies are paired and a noisy neighbour hits both alike.
        rows: dict[str, list[tuple[int, dict[str, float]]]] = {m: [] for m in modes}
        lat1: dict[str, list[float]] = {m: [] for m in modes}
        for i, (c, q) in enumerate(jobs):
            for retrieval in modes if i % 2 == 0 else modes[::-1]:
                covered, dt = await search(
                    clients[retrieval], q["q"], users[c["id"]], retrieval, covers, refs.get(c["id"])
                )
                rows[retrieval].append((q["cat"], score_covered(covered, q["gold"])))
                lat1[retrieval].append(dt)
        for mode in modes:
            lat8: list[float] = []
            sem = asyncio.Semaphore(concurrency)

            async def one(
                c: dict[str, Any],
                q: dict[str, Any],
                mode: str = mode,
                sem: asyncio.Semaphore = sem,
                lat8: list[float] = lat8,
            ) -> None:
                async with sem:
                    _, dt = await search(clients[mode], q["q"], users[c["id"]], mode, covers, refs.get(c["id"]))
                    lat8.append(dt)

            t1 = time.perf_counter()
            await asyncio.gather(*(one(c, q) for c, q in jobs))
            wall8 = time.perf_counter() - t1
            results[mode] = {
                "metrics": aggregate(rows[mode]),
                "latency_ms": {
                    "c1": {
                        "p50": nearest_rank(lat1[mode], 50),
                        "p95": nearest_rank(lat1[mode], 95),
                        "p99": nearest_rank(lat1[mode], 99),
                    },
                    f"c{concurrency}": {
                        "p50": nearest_rank(lat8, 50),
                        "p95": nearest_rank(lat8, 95),
                        "p99": nearest_rank(lat8, 99),
                        "searches_per_s": round(len(jobs) / wall8, 1),
                    },
                },
            }
        # the same question, hybrid minus dense-only, at concurrency 1
        extra = [h - d for h, d in zip(lat1["hybrid"], lat1["semantic"], strict=True)]
        results["hybrid_over_semantic_ms"] = {"p50": nearest_rank(extra, 50), "p95": nearest_rank(extra, 95)}
        for name in graph_urls:  # the same question, graph-aware minus plain hybrid, at concurrency 1
            extra = [g - h for g, h in zip(lat1[name], lat1["hybrid"], strict=True)]
            results[f"{name}_over_hybrid_ms"] = {"p50": nearest_rank(extra, 50), "p95": nearest_rank(extra, 95)}
    rows = [(q["cat"], score_question(bm25_rank(c["turns"], q["q"]), q["gold"])) for c in convs for q in c["questions"]]
    results["bm25"] = {"metrics": aggregate(rows)}
    return results


# ----------------------------------------------------------------------------------------------
# a private memserver when no URL is given
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def private_server(
    echo_llm: bool = False, graph_weights: tuple[float, ...] = ()
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A private Postgres + `memserver serve` (the launcher the tests use); yields (URL, key, graph URLs).

    `echo_llm`: the server's LLM is the scripted OpenAI-compatible fake in echo mode (its own process):
    one fact per user message, verbatim. It proves the infer=true plumbing; it is not a quality figure.
    `graph_weights`: the fake also answers heuristic relations, and one more server per weight, on the same
    database, searches with MEMSERVER_SEARCH__GRAPH_WEIGHT=<w> (graph URLs: "graph@<w>" -> its URL)."""
    import subprocess
    import sys

    from harness.postgres import PostgresRun
    from harness.server import free_port, served
    from harness.tenants import new_tenant

    with PostgresRun("memserver-locomo-") as run:
        url = run.migrate()
        _, key = asyncio.run(new_tenant(url, "bench", f"locomo-{time.time_ns()}"))
        # No query-embedding cache: the hybrid pass runs first and would otherwise pay every query's
        # embedding while the dense-only pass reuses them, which skews the latency comparison.
        env = {"MEMSERVER_EMBEDDER__CACHE_SIZE": "0"}
        fake = None
        if echo_llm:
            port = free_port()
            fake = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fakes.openai_server",
                    "--port",
                    str(port),
                    "--echo",
                    "--keep-alive",
                    *(["--heuristic-graph"] if graph_weights else []),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            assert fake.stdout is not None
            fake.stdout.readline()  # "fake OpenAI server on ...": listening
            env |= {
                "MEMSERVER_LLM__BASE_URL": f"http://127.0.0.1:{port}/v1",
                "MEMSERVER_LLM__API_KEY": "sk-fake",
                "MEMSERVER_LLM__MODEL": "echo",
            }
        try:
            with contextlib.ExitStack() as servers:
                server = servers.enter_context(served(url, run.workdir / "memserver.log", **env))
                graph_urls = {}
                for w in graph_weights:
                    log = run.workdir / f"memserver-graph-{w}.log"
                    weighted = servers.enter_context(served(url, log, **env, MEMSERVER_SEARCH__GRAPH_WEIGHT=str(w)))
                    graph_urls[f"graph@{w}"] = weighted.url
                yield server.url, key, graph_urls
        finally:
            if fake is not None:
                fake.terminate()
                fake.wait(10)


def table(results: dict[str, Any]) -> str:
    mode = results.get("meta", {}).get("mode", "A")
    lines = ["", f"LoCoMo-ER mode {mode}: frac@10 per category id (pooled = categories 1-4)", ""]
    if mode == "B":
        lines.insert(2, "(hybrid/semantic: a memory covers the turns in its provenance; bm25 ranks the raw turns)")
        lines.insert(3, f"LLM: {results['meta'].get('llm')}")
    head = f"{'system':10s} {'frac@10':>8s} {'all@10':>7s} {'MRR':>6s}  " + " ".join(f"{'c' + c:>6s}" for c in "12345")
    lines.append(head)
    systems = ("bm25", *(k for k in results if (k in MODES or k.startswith("graph@")) and "metrics" in results[k]))
    for name in systems:
        m = results[name]["metrics"]
        pooled = m["1-4"]
        cats = " ".join(f"{m[c]['frac@10']:6.3f}" if c in m else f"{'-':>6s}" for c in "12345")
        lines.append(f"{name:10s} {pooled['frac@10']:8.3f} {pooled['all@10']:7.3f} {pooled['mrr']:6.3f}  {cats}")
    lines += ["", "every k (frac@k / all@k), MRR, per group:", ""]
    head = f"{'system':10s} {'group':>5s} {'n':>4s} " + " ".join(f"{'@' + str(k):>11s}" for k in KS) + f" {'MRR':>6s}"
    lines.append(head)
    for name in systems:
        m = results[name]["metrics"]
        for group in ("1-4", "1", "2", "3", "4", "5"):
            if group not in m:
                continue
            g = m[group]
            cells = " ".join(f"{g[f'frac@{k}']:.3f}/{g[f'all@{k}']:.3f}" for k in KS)
            lines.append(f"{name:10s} {group:>5s} {g['n']:4d} {cells} {g['mrr']:6.3f}")
    lines.append("")
    for name in systems[1:]:
        lat = results[name]["latency_ms"]
        lines.append(
            f"{name:10s} latency ms "
            + "  ".join(f"{c}: p50 {v['p50']} p95 {v['p95']} p99 {v['p99']}" for c, v in lat.items())
        )
    extra = results.get("hybrid_over_semantic_ms")
    if extra:
        lines.append(f"hybrid minus semantic, same question, c1: p50 {extra['p50']} ms, p95 {extra['p95']} ms")
    for name in systems[1:]:
        extra = results.get(f"{name}_over_hybrid_ms")
        if extra:
            lines.append(f"{name} minus hybrid, same question, c1: p50 {extra['p50']} ms, p95 {extra['p95']} ms")
    ing = results["ingest"]
    lines.append(f"ingest: {ing['turns']} turns in {ing['seconds']} s = {ing['turns_per_s']} turns/s")
    inf = results.get("inferred")
    if inf:
        lines.append(
            f"infer=true: {inf['adds']} adds ({inf['failed']} failed), memory events {inf['memory_events']}, "
            f"{inf['memories']} memories = {inf['memories_per_turn']} per turn; per add: "
            f"{inf['llm_calls_per_add']} LLM calls ({inf['second_calls']} second calls), "
            f"{inf['prompt_tokens_per_add']} prompt tokens, {inf['completion_tokens_per_add']} completion tokens; "
            f"add + event p50 {inf['add_seconds_p50']} s"
        )
        lines.append(
            f"stored memories listed: {inf.get('memories_listed')}; turns covered by some memory: "
            f"{inf.get('turns_covered_by_some_memory')}; evidence reachable at all (ceiling of frac@k): "
            f"{inf.get('evidence_reachable_1_4')} for categories 1-4, {inf.get('evidence_reachable_5')} for 5"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a LoCoMo-format JSON file")
    p.add_argument("--conversations", help="comma-separated sample ids (default: all)")
    p.add_argument("--url", help="a running memserver (default: start a private one)")
    p.add_argument("--key", default=os.environ.get("MEMSERVER_KEY"), help="API key for --url")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument(
        "--mode",
        choices=["A", "B"],
        default="A",
        help="A: raw turns, infer=false (default). B: two-message exchanges, infer=true, scored by provenance "
        "(a private server gets the echo fake as its LLM: plumbing only, not a quality figure)",
    )
    p.add_argument(
        "--graph",
        help="mode B, private server: comma-separated graph weights; adds build a heuristic graph and the "
        "questions also go to one server per weight (MEMSERVER_SEARCH__GRAPH_WEIGHT)",
    )
    p.add_argument(
        "--reference-date",
        choices=["last-session"],
        help="send each question with reference_date = the day of its conversation's last session (the "
        "protocol sends none: relative words then resolve against today)",
    )
    p.add_argument("--out", type=Path, help="default bench/results/locomo.json (mode B: locomo-b.json)")
    args = p.parse_args()
    weights = tuple(float(w) for w in args.graph.split(",")) if args.graph else ()
    if weights and (args.mode != "B" or args.url):
        raise SystemExit("--graph needs --mode B and a private server (no --url)")
    args.out = args.out or ROOT / "bench" / "results" / ("locomo-b.json" if args.mode == "B" else "locomo.json")
    only = set(args.conversations.split(",")) if args.conversations else None
    convs = load(args.data, only)
    if not convs:
        raise SystemExit("no conversations selected")
    if args.url:
        if not args.key:
            raise SystemExit("--key (or MEMSERVER_KEY) is required with --url")
        results = asyncio.run(run(args.url, args.key, convs, args.concurrency, args.mode, None, args.reference_date))
    else:
        with private_server(echo_llm=args.mode == "B", graph_weights=weights) as (url, key, graph_urls):
            results = asyncio.run(run(url, key, convs, args.concurrency, args.mode, graph_urls, args.reference_date))
    results["meta"] = {
        "mode": args.mode,
        "llm": None
        if args.mode == "A"
        else "the server's own (--url)"
        if args.url
        else "echo fake (one fact per user message, verbatim): plumbing proof, not a quality figure",
        "data": str(args.data),
        "conversations": [c["id"] for c in convs],
        "questions": sum(len(c["questions"]) for c in convs),
        "graph": "heuristic (speaker, mentions, name) relations from the echo fake; graph@w: search weight w"
        if weights
        else None,
        "reference_date": args.reference_date,
        "when": datetime.now(UTC).isoformat(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
