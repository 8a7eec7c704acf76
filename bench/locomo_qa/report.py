"""The report of a run, rebuilt from its logs each time (so a resumed run reports everything it did):
`report.json` and `report.md` in the run directory, the markdown on stdout.

J (share of answers labelled CORRECT), F1 and BLEU-1 per category id and overall; prompt and completion tokens per
add (memserver's event metadata) and per question (answer, each judge); latency p50/p95 of add, search, answer
and judge calls; estimated against actual cost; 20 judged answers drawn with a fixed seed.
"""

from __future__ import annotations

import collections
import json
import random
from typing import Any

from bench.locomo_qa import estimate, metrics
from bench.locomo_qa.plan import Plan
from bench.locomo_qa.store import RunDir
from harness.stats import percentile

SAMPLE, SEED = 20, 20


def _latency(values: list[float]) -> dict[str, float | int | None]:
    ms = [v * 1000 for v in values]
    if not ms:
        return {"p50_ms": None, "p95_ms": None, "n": 0}
    return {"p50_ms": round(percentile(ms, 0.5), 1), "p95_ms": round(percentile(ms, 0.95), 1), "n": len(ms)}


def _per_call(rows: list[dict[str, Any]]) -> dict[str, float | int | None]:
    counted = [r for r in rows if r.get("prompt_tokens") is not None]
    return {
        "prompt_tokens": metrics.mean(float(r["prompt_tokens"]) for r in counted),
        "completion_tokens": metrics.mean(float(r.get("completion_tokens") or 0) for r in counted),
        "llm_calls": metrics.mean(float(r["llm_calls"]) for r in counted if r.get("llm_calls") is not None),
        "cached_prompt_tokens": metrics.mean(
            float(r["cached_prompt_tokens"]) for r in counted if r.get("cached_prompt_tokens") is not None
        ),
        "n": len(rows),
        "n_with_usage": len(counted),
    }


def build(store: RunDir, plan: Plan, judges: tuple[str, ...], prices: dict[str, float | None]) -> dict[str, Any]:
    manifest = store.manifest()
    add_keys = {a.key for a in plan.adds}
    q_keys = {q.key for q in plan.questions}
    last: dict[str, dict[str, Any]] = {}
    for r in store.read("ingest"):
        if r["add"] in add_keys and (r["status"] == "applied" or last.get(r["add"], {}).get("status") != "applied"):
            last[r["add"]] = r
    adds = list(last.values())
    applied = [r for r in adds if r["status"] == "applied"]
    answers = {r["q"]: r for r in store.read("answers") if r["q"] in q_keys}
    judged = [r for r in store.read("judgments") if r["q"] in answers]
    labels = {(r["q"], r["judge"]): r for r in judged}
    ops: collections.Counter[str] = collections.Counter()
    for r in applied:
        ops.update(r.get("ops") or {})

    cats = plan.categories
    scores: dict[str, Any] = {
        f"J_{j}": metrics.by_category(
            [
                (a["category"], float(labels[(k, j)]["label"] == "CORRECT"))
                for k, a in answers.items()
                if (k, j) in labels
            ],
            cats,
        )
        for j in judges
    }
    scores["F1"] = metrics.by_category(
        [(a["category"], metrics.f1(a["answer"], a["gold"])) for a in answers.values()], cats
    )
    scores["BLEU1"] = metrics.by_category(
        [(a["category"], metrics.bleu1(a["answer"], a["gold"])) for a in answers.values()], cats
    )
    unparsed = collections.Counter(r["judge"] for r in judged if not r.get("parsed", True))
    sample_keys = sorted(random.Random(SEED).sample(sorted(answers), min(SAMPLE, len(answers))))
    done = estimate.actual(adds, list(answers.values()), judged)
    return {
        "meta": {k: v for k, v in manifest.items() if k != "runs"},
        "smoke": bool(manifest["pinned"].get("smoke")),  # a scripted model's run: not a score
        "runs": manifest.get("runs", []),
        "notes": sorted({n for r in manifest.get("runs", []) for n in (r.get("counts") or {}).get("notes", [])}),
        "categories": {"ran": list(cats), "skipped": [c for c in (1, 2, 3, 4, 5) if c not in cats]},
        "ingest": {
            "planned": len(plan.adds),
            "applied": len(applied),
            "failed": len(adds) - len(applied),
            "recovered_from_events": sum(1 for r in applied if r.get("recovered")),
            "memory_events": dict(ops),
            "failures": [r.get("errors") for r in adds if r["status"] != "applied"][:5],
        },
        "questions": {
            "planned": len(plan.questions),
            "answered": len(answers),
            "judged": {j: sum(1 for r in judged if r["judge"] == j) for j in judges},
            "unparsed_labels_counted_wrong": dict(unparsed),
        },
        "scores": scores,
        "tokens": {
            "per_add": _per_call(applied),
            "per_question": {
                "answer": _per_call(list(answers.values())),
                **{f"judge_{j}": _per_call([r for r in judged if r["judge"] == j]) for j in judges},
            },
        },
        "latency": {
            "add": _latency([r["seconds"] for r in applied if r.get("seconds") is not None]),
            "search": _latency([s for a in answers.values() for s in a.get("search_s") or []]),
            "answer": _latency([a["seconds"] for a in answers.values() if a.get("seconds") is not None]),
            "judge": _latency([r["seconds"] for r in judged if r.get("seconds") is not None]),
        },
        "cost": {
            "prices_usd_per_1m": prices,
            "estimated": [r.get("estimate") for r in manifest.get("runs", [])],
            "actual": done.as_dict(prices),
        },
        "sample": [
            {
                "q": k,
                "category": answers[k]["category"],
                "question": answers[k]["question"],
                "gold": answers[k]["gold"],
                "answer": answers[k]["answer"],
                **{f"label_{j}": labels.get((k, j), {}).get("label") for j in judges},
            }
            for k in sample_keys
        ],
    }


def _fmt(v: Any, kind: str = "score") -> str:
    if v is None:
        return "-"
    if kind == "pct":
        return f"{100 * v:.1f}"
    if kind == "int":
        return f"{v:,.0f}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _cost(e: dict[str, Any] | None) -> str:
    if not e:
        return "-"
    tokens = f"{e['add_prompt'] + e['answer_prompt'] + e['judge_prompt']:,} in + "
    tokens += f"{e['add_completion'] + e['answer_completion'] + e['judge_completion']:,} out tokens"
    return f"${e['usd']:.2f} ({tokens})" if e.get("usd") is not None else tokens


def markdown(report: dict[str, Any], judges: tuple[str, ...]) -> str:
    meta, scores = report["meta"], report["scores"]
    pinned = meta.get("pinned", {})
    head = "| category | n | " + " | ".join(f"J {j} (%)" for j in judges) + " | F1 | BLEU-1 |"
    lines = [
        f"## LoCoMo QA: answer model `{pinned.get('model')}`, judge `{pinned.get('judge_model')}`, top_k "
        f"{pinned.get('top_k')}",
        "",
        *(["**Smoke run against a scripted model: not a score.**", ""] if report["smoke"] else []),
        head,
        "|" + "---|" * (4 + len(judges)),
    ]
    for c in [*map(str, report["categories"]["ran"]), "overall"]:
        row = [c, _fmt(scores["F1"][c]["n"])]
        row += [_fmt(scores[f"J_{j}"][c]["mean"], "pct") for j in judges]
        row += [_fmt(scores["F1"][c]["mean"]), _fmt(scores["BLEU1"][c]["mean"])]
        lines.append("| " + " | ".join(row) + " |")
    ing, tok, lat, cost = report["ingest"], report["tokens"], report["latency"], report["cost"]
    per_add, per_q = tok["per_add"], tok["per_question"]
    judge_tokens = "; ".join(
        f"judge {j} {_fmt(per_q[f'judge_{j}']['prompt_tokens'], 'int')} / "
        f"{_fmt(per_q[f'judge_{j}']['completion_tokens'], 'int')}"
        for j in judges
    )
    lines += [
        "",
        f"Categories run: {report['categories']['ran']}; skipped: {report['categories']['skipped']}.",
        f"Adds: {ing['applied']}/{ing['planned']} applied, {ing['failed']} failed, "
        f"{ing['recovered_from_events']} taken from events; memory events {ing['memory_events']}.",
        f"Tokens per add (prompt / completion): {_fmt(per_add['prompt_tokens'], 'int')} / "
        f"{_fmt(per_add['completion_tokens'], 'int')}, {_fmt(per_add['llm_calls'])} LLM calls.",
        f"Tokens per question (prompt / completion): answer {_fmt(per_q['answer']['prompt_tokens'], 'int')} / "
        f"{_fmt(per_q['answer']['completion_tokens'], 'int')}; {judge_tokens}.",
        "Latency p50 / p95 ms: "
        + ", ".join(f"{k} {_fmt(v['p50_ms'], 'int')} / {_fmt(v['p95_ms'], 'int')}" for k, v in lat.items())
        + ".",
        "Cost estimated before each run: " + "; ".join(_cost(e) for e in cost["estimated"]) + ".",
        f"Cost counted: {_cost(cost['actual'])}.",
        *(f"Note: {n}" for n in report["notes"]),
    ]
    return "\n".join(lines) + "\n"


def write(store: RunDir, report: dict[str, Any], judges: tuple[str, ...]) -> str:
    text = markdown(report, judges)
    (store.path / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (store.path / "report.md").write_text(text)
    return text
