"""The flat summary of a run (so repeats reduce to medians), the ratios and targets, and the table."""

from __future__ import annotations

import argparse
from typing import Any

from bench.speed.config import SEARCH_MODES, TARGETS


def summarize(run: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    s: dict[str, float] = {}
    ms = run["memserver"]
    for r in ms["ingest"]:
        p = f"memserver/ingest/c{r['concurrency']}/"
        s |= {p + k: r[k] for k in ("adds_per_s", "p50_ms", "p95_ms", "p99_ms")}
        s[p + "statements_per_op"] = r["db"]["statements_per_op"]
        s[p + "db_ms_per_op"] = r["db"]["db_ms_per_op"]
        s |= {p + k: v for k, v in r["cpu"].items()}
    for r in ms.get("sdk_ingest", []):
        p = f"memserver-sdk/ingest/c{r['concurrency']}/"
        s |= {p + k: r[k] for k in ("adds_per_s", "p50_ms", "p95_ms", "p99_ms")}
    for size, block in ms["search"].items():
        for r in block["runs"]:
            p = f"memserver/search/{size}/{r['mode']}/c{r['concurrency']}/"
            s |= {p + k: r[k] for k in ("p50_ms", "p95_ms", "p99_ms", "searches_per_s", "mean_hits")}
            s[p + "statements_per_op"] = r["db"]["statements_per_op"]
            s[p + "db_ms_per_op"] = r["db"]["db_ms_per_op"]
            s |= {p + k: v for k, v in r["cpu"].items()}
    s["memserver/idle_rss_mb"] = ms["idle_rss_mb_after_startup"]
    s["memserver/peak_rss_mb"] = ms["peak_rss_mb"]
    for mode, res in run.get("mem0", {}).items():
        for r in res["ingest"]:
            p = f"mem0-{mode}/ingest/c{r['concurrency']}/"
            s |= {p + k: r[k] for k in ("adds_per_s", "p50_ms", "p95_ms", "p99_ms")}
            db = r.get("db") or {}
            if "server_statements_per_op_pg_stat_statements" in db:
                s[p + "statements_per_op"] = db["server_statements_per_op_pg_stat_statements"]
            if "client_round_trips_per_op" in db:
                s[p + "round_trips_per_op"] = db["client_round_trips_per_op"]
        for size, block in res["search"].items():
            for r in block["runs"]:
                p = f"mem0-{mode}/search/{size}/c{r['concurrency']}/"
                s |= {p + k: r[k] for k in ("p50_ms", "p95_ms", "p99_ms", "searches_per_s", "mean_hits")}
                db = r.get("db") or {}
                if "server_statements_per_op_pg_stat_statements" in db:
                    s[p + "statements_per_op"] = db["server_statements_per_op_pg_stat_statements"]
                if "client_round_trips_per_op" in db:
                    s[p + "round_trips_per_op"] = db["client_round_trips_per_op"]
            rc = block.get("vector_stage_recall") or {}
            if rc.get(f"recall_at_{args.top_k}_vs_exact") is not None:
                s[f"mem0-{mode}/search/{size}/vector_recall"] = rc[f"recall_at_{args.top_k}_vs_exact"]
        # ratios
        for c in args.levels:
            a, b = s.get(f"memserver/ingest/c{c}/adds_per_s"), s.get(f"mem0-{mode}/ingest/c{c}/adds_per_s")
            if a and b:
                s[f"ratio/ingest/c{c}/vs-mem0-{mode}"] = round(a / b, 2)
        for size in map(str, args.sizes):
            for c in args.search_levels:
                m = s.get(f"mem0-{mode}/search/{size}/c{c}/p95_ms")
                for smode in SEARCH_MODES:
                    x = s.get(f"memserver/search/{size}/{smode}/c{c}/p95_ms")
                    if m and x:
                        s[f"ratio/search-p95/{size}/{smode}/c{c}/vs-mem0-{mode}"] = round(m / x, 2)
    return s


def targets(s: dict[str, float], args: argparse.Namespace) -> list[dict[str, Any]]:
    fair = "iterative" if "iterative" in args.peer_modes else (args.peer_modes[0] if args.peer_modes else None)
    out: list[dict[str, Any]] = []
    if fair:
        ingest_ref = "default" if "default" in args.peer_modes else fair
        c = max(args.levels)
        v = s.get(f"ratio/ingest/c{c}/vs-mem0-{ingest_ref}")
        out.append(
            {
                "target": f"ingest adds/s >= {TARGETS['ingest_ratio_c8']:g}x Mem0 (c{c})",
                "value": v,
                "met": v is not None and v >= TARGETS["ingest_ratio_c8"],
            }
        )
        for size in map(str, args.sizes):
            for smode in SEARCH_MODES:
                v = s.get(f"ratio/search-p95/{size}/{smode}/c1/vs-mem0-{fair}")
                out.append(
                    {
                        "target": f"search p95 >= {TARGETS['search_p95_ratio']:g}x faster than Mem0 ({fair}), "
                        f"{smode} @{size} c1",
                        "value": v,
                        "met": v is not None and v >= TARGETS["search_p95_ratio"],
                    }
                )
    big = str(max(args.sizes)) if args.sizes else None
    if big:
        v = s.get(f"memserver/search/{big}/hybrid/c1/p95_ms")
        out.append(
            {
                "target": f"hybrid search p95 @{big} c1 < {TARGETS['hybrid_p95_100k_ms']:g} ms",
                "value": v,
                "met": v is not None and v < TARGETS["hybrid_p95_100k_ms"],
            }
        )
    return out


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)


def row(cells: list[Any]) -> None:
    print("| " + " | ".join(fmt(c) for c in cells) + " |")


def print_table(s: dict[str, float], args: argparse.Namespace, header: str) -> None:
    """The ingest and search tables, the ratios, RSS, Mem0's vector recall and the targets."""
    print()
    print(header)
    print()
    print_ingest(s, args)
    print()
    print_search(s, args)
    print_footer(s, args)


INGEST_HEAD = [
    "ingest (infer=false)", "conc", "adds/s", "p50 ms", "p95 ms", "p99 ms",
    "stmts/add", "DB ms/add", "API CPU ms/add", "PG CPU ms/add",
]  # fmt: skip
INGEST_KEYS = [
    "adds_per_s", "p50_ms", "p95_ms", "p99_ms",
    "statements_per_op", "db_ms_per_op", "server_cpu_ms_per_op", "postgres_cpu_ms_per_op",
]  # fmt: skip
SEARCH_HEAD = [
    "search top_k=10", "memories", "conc", "p50 ms", "p95 ms", "p99 ms",
    "searches/s", "mean hits", "stmts/search", "DB ms/search",
]  # fmt: skip


def print_ingest(s: dict[str, float], args: argparse.Namespace) -> None:
    row(INGEST_HEAD)
    row(["---"] * 10)
    systems = [("memserver (raw HTTP)", "memserver"), ("memserver (Python SDK)", "memserver-sdk")]
    systems += [(f"Mem0 OSS ({m})", f"mem0-{m}") for m in args.peer_modes]
    for label, key in systems:
        for c in args.levels:
            p = f"{key}/ingest/c{c}/"
            if p + "adds_per_s" not in s:
                continue
            row([label, c, *(s.get(p + k) for k in INGEST_KEYS)])


def print_search(s: dict[str, float], args: argparse.Namespace) -> None:
    row(SEARCH_HEAD)
    row(["---"] * 10)
    for size in map(str, args.sizes):
        for c in args.search_levels:
            sources = [(f"memserver {m}", f"memserver/search/{size}/{m}/c{c}/") for m in SEARCH_MODES]
            sources += [(f"Mem0 OSS ({m})", f"mem0-{m}/search/{size}/c{c}/") for m in args.peer_modes]
            for label, p in sources:
                if p + "p95_ms" in s:
                    cells = [s[p + k] for k in ("p50_ms", "p95_ms", "p99_ms", "searches_per_s", "mean_hits")]
                    row([label, size, c, *cells, s.get(p + "statements_per_op"), s.get(p + "db_ms_per_op", "-")])


def print_footer(s: dict[str, float], args: argparse.Namespace) -> None:
    ratios = {k: v for k, v in s.items() if k.startswith("ratio/")}
    if ratios:
        print()
        print("ratios (ingest: memserver adds/s / Mem0 adds/s; search: Mem0 p95 / memserver p95):")
        for k, v in ratios.items():
            print(f"  {k.removeprefix('ratio/')}: {v}x")
    print()
    print(
        f"memserver API process RSS: idle after startup {fmt(s.get('memserver/idle_rss_mb'))} MB, "
        f"peak {fmt(s.get('memserver/peak_rss_mb'))} MB"
    )
    for m in args.peer_modes:
        for size in map(str, args.sizes):
            if (v := s.get(f"mem0-{m}/search/{size}/vector_recall")) is not None:
                print(f"Mem0 ({m}) vector-stage recall@{args.top_k} vs exact @{size}: {v}")
    print()
    for t in targets(s, args):
        print(f"  [{'PASS' if t['met'] else 'FAIL'}] {t['target']}: {fmt(t['value'])}")
