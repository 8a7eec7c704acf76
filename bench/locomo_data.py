"""LoCoMo-ER's data and scores: the dataset, evidence turns, frac@k / all@k / MRR, and the BM25 baseline
(`bench.locomo_recall` runs the benchmark; the cost and QA benches read the dataset through here too)."""

from __future__ import annotations

import collections
import itertools
import json
import math
import re
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import ROOT

DEFAULT_DATA = next(
    (
        p
        for p in (
            ROOT.parent / "shared" / "data" / "locomo-dev.json",
            Path("/work/shared/data/locomo-dev.json"),
        )
        if p.exists()
    ),
    ROOT.parent / "shared" / "data" / "locomo-dev.json",
)
KS = (1, 5, 10, 20, 50)
MODES = ("hybrid", "semantic")

# A standard English stop-word list (NLTK's), for the BM25 baseline.
STOP = frozenset(
    """a about above after again against ain all am an and any are aren as at be because been before being
    below between both but by can couldn d did didn do does doesn doing don down during each few for
    from further had hadn has hasn have haven having he her here hers herself him himself his how i if
    in into is isn it its itself just ll m ma me mightn more most mustn my myself needn no nor not now o
    of off on once only or other our ours ourselves out over own re s same shan she should shouldn so
    some such t than that the their theirs them themselves then there these they this those through to
    too under until up ve very was wasn we were weren what when where which while who whom why will with
    won wouldn y you your yours yourself yourselves""".split()
)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
def load(path: Path, only: set[str] | None) -> list[dict[str, Any]]:
    convs = []
    for conv in json.loads(path.read_text()):
        if only and conv["sample_id"] not in only:
            continue
        c = conv["conversation"]
        turns = []
        n = 1
        while f"session_{n}" in c:
            when = datetime.strptime(c[f"session_{n}_date_time"], "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
            for t in c[f"session_{n}"]:
                text = f"{t['speaker']}: {t['text']}"
                if t.get("blip_caption"):
                    text += f" [shares a photo: {t['blip_caption']}]"
                turns.append({"dia_id": t["dia_id"], "text": text, "session": n, "ts": int(when.timestamp())})
            n += 1
        ids = {t["dia_id"] for t in turns}
        questions = []
        for q in conv["qa"]:
            gold = gold_ids(q.get("evidence", []), ids)
            if gold:
                questions.append({"q": q["question"], "cat": int(q["category"]), "gold": gold})
        convs.append({"id": conv["sample_id"], "turns": turns, "questions": questions})
    return convs


def exchanges(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each session's turns as consecutive two-message exchanges: turn 2k as `user`, turn 2k+1 as `assistant`
    (a session with an odd number of turns ends with a one-message exchange). Keeps each exchange's dia_ids."""
    out: list[dict[str, Any]] = []
    for session, group in itertools.groupby(turns, key=lambda t: t["session"]):
        rows = list(group)
        for i in range(0, len(rows), 2):
            pair = rows[i : i + 2]
            out.append(
                {
                    "session": session,
                    "ts": pair[0]["ts"],
                    "dia_ids": [t["dia_id"] for t in pair],
                    "messages": [
                        {"role": role, "content": t["text"]}
                        for role, t in zip(("user", "assistant"), pair, strict=False)
                    ],
                }
            )
    return out


def gold_ids(evidence: list[str], ids: set[str]) -> list[str]:
    """Split on ; , and spaces; repair D:11:26 -> D11:26 and D30:05 -> D30:5; drop unknown ids."""
    out: list[str] = []
    for e in evidence:
        for part in re.split(r"[;,\s]+", e):
            part = part.strip().replace("D:", "D")
            m = re.match(r"D(\d+):0*(\d+)$", part)
            if m:
                part = f"D{m.group(1)}:{m.group(2)}"
            if part in ids and part not in out:
                out.append(part)
    return out


# ----------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------
def score_question(ranked: list[str], gold: list[str]) -> dict[str, float]:
    """Mode A: each hit is one turn."""
    return score_covered([{h} for h in ranked], gold)


def score_covered(covered: list[set[str]], gold: list[str]) -> dict[str, float]:
    """Each hit covers a set of turns (mode A: its own; mode B: its provenance); k counts hits."""
    g = set(gold)
    row = {}
    for k in KS:
        top = set().union(*covered[:k])
        row[f"frac@{k}"] = len(g & top) / len(g)
        row[f"all@{k}"] = float(g <= top)
    row["mrr"] = next((1 / (i + 1) for i, h in enumerate(covered[:50]) if h & g), 0.0)
    return row


def aggregate(rows: list[tuple[int, dict[str, float]]]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    for cat, row in rows:
        groups[str(cat)].append(row)
        if cat != 5:
            groups["1-4"].append(row)
    return {
        g: {"n": len(rs), **{k: round(statistics.fmean(r[k] for r in rs), 4) for k in rs[0]}}
        for g, rs in sorted(groups.items())
    }


# ----------------------------------------------------------------------------------------------
# BM25 baseline
# ----------------------------------------------------------------------------------------------
def tokens(s: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", s.lower()) if w not in STOP]


def bm25_rank(turns: list[dict[str, Any]], query: str, k1: float = 1.2, b: float = 0.75) -> list[str]:
    docs = [collections.Counter(tokens(t["text"])) for t in turns]
    lens = [sum(d.values()) for d in docs]
    avg = statistics.fmean(lens) or 1.0
    df = collections.Counter(w for d in docs for w in d)
    n = len(docs)
    scores = []
    for i, d in enumerate(docs):
        s = 0.0
        for w in set(tokens(query)):
            f = d.get(w)
            if f:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * lens[i] / avg))
        scores.append((s, -i))
    return [turns[-i]["dia_id"] for s, i in sorted(scores, reverse=True) if s > 0][:50]
