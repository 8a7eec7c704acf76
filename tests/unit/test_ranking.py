"""Hybrid ranking (pipeline.ranking): how each kind of evidence moves a memory's score."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memserver.pipeline.ranking import HYBRID, KEYWORD_ONLY, MAX_TERMS, Evidence, Scored, Weights, rank

T0 = datetime(2023, 7, 10, 12, tzinfo=UTC).timestamp()


def evidence(*memories: dict[str, float], query_terms: int = 2) -> Evidence:
    """Memories in insertion order; unspecified fields: scope 1, one minute apart, 5 terms long."""
    rows = [
        (
            i,
            int(m.get("scope", 1)),
            m.get("created", T0 + 60 * i),
            m.get("cos", 0.0),
            m.get("length", 5.0),
            int(m.get("terms", 0)),
            m.get("names", 0.0),
        )
        for i, m in enumerate(memories)
    ]
    return Evidence.from_columns([list(c) for c in zip(*rows, strict=True)] if rows else [[]] * 7, query_terms)


def test_no_candidates_no_results() -> None:
    assert rank(evidence(), periods=[], months=[]) == []


def test_a_purely_semantic_match_scores_about_its_cosine() -> None:
    lone = evidence({"cos": 0.6}, {"cos": 0.0, "scope": 2})
    best = rank(lone, periods=[], months=[], limit=1)[0]
    assert best.index == 0
    assert math.isclose(best.semantic, 0.6)  # 0.5 x cos + 0.5 x cos averaged with (no) neighbours
    assert best.keyword == best.entity == best.temporal == best.context == 0.0


def test_keyword_is_the_share_of_the_query_matched() -> None:
    # term 1 is rare (2 of 6 memories), term 2 common (5 of 6): matching the rare one is most of the query
    ev = evidence(
        {"terms": 0b01, "scope": 1},
        *({"terms": 0b10, "scope": k} for k in (2, 3, 4, 5)),
        {"terms": 0b11, "scope": 6},
    )
    s = {x.index: x.keyword for x in rank(ev, periods=[], months=[], limit=6)}
    # all of the query: the whole BM25 half, and half of the neighbourhood's (scaled for up to 2 matches per term)
    assert math.isclose(s[5], 0.75)
    assert s[0] > 0.5 > s[1] > 0
    assert s[1] == s[2]


def test_keyword_only_hits_rank_with_no_semantic_similarity_at_all() -> None:
    ev = evidence({"cos": 0.3, "scope": 1}, {"cos": -0.1, "terms": 0b1, "scope": 2}, query_terms=1)
    assert next(s.index for s in rank(ev, periods=[], months=[], weights=KEYWORD_ONLY)) == 1
    assert next(s.index for s in rank(ev, periods=[], months=[])) == 1  # hybrid too: 1 x keyword > 0.3 cosine


def test_neighbours_share_relevance_within_a_scope_and_an_hour_only() -> None:
    # 0 and 1 are one conversation; 2 is in another scope; 3 is the same scope two hours later
    ev = evidence(
        {"cos": 0.1},
        {"cos": 0.9},
        {"cos": 0.1, "scope": 2, "created": T0 + 90},
        {"cos": 0.1, "created": T0 + 7200},
    )
    s = {x.index: x for x in rank(ev, periods=[], months=[], limit=4)}
    assert s[0].context > 0
    assert s[0].semantic > s[2].semantic
    assert s[2].context == 0
    assert s[3].context == 0
    assert math.isclose(s[2].semantic, s[3].semantic)


def test_names_and_dates_add_their_weight() -> None:
    july = (datetime(2023, 7, 1, tzinfo=UTC).timestamp(), datetime(2023, 8, 1, tzinfo=UTC).timestamp())
    ev = evidence({"cos": 0.5, "names": 1.0, "scope": 1}, {"cos": 0.5, "scope": 2, "created": T0 - 86400 * 60})
    s = {x.index: x for x in rank(ev, periods=[july], months=[], limit=2)}
    assert s[0].entity == Weights().entity
    assert s[1].entity == 0
    assert s[0].temporal == Weights().time
    assert s[1].temporal == 0
    by_month = {x.index: x.temporal for x in rank(ev, periods=[], months=[7], limit=2)}
    assert by_month == {0: Weights().time, 1: 0.0}


def test_ties_go_to_the_most_recently_added() -> None:
    ev = evidence({"cos": 0.5, "scope": 1}, {"cos": 0.5, "scope": 2}, {"cos": 0.5, "scope": 3})
    assert [s.index for s in rank(ev, periods=[], months=[], limit=3)] == [2, 1, 0]


# --- the recorded scores ---------------------------------------------------------------------------------
# `rank`'s exact output on seeded random evidence, recorded in ranking_golden.json: a rewrite of `rank` that
# changes the order of any floating-point operation changes a last bit somewhere and fails here. Re-record
# (`python -m tests.unit.test_ranking`) only for a deliberate change of the scores, and say so.
GOLDEN = Path(__file__).with_name("ranking_golden.json")
SHOWN = 10  # records kept in the file per case, best first; a digest covers all of them


@dataclass(frozen=True)
class Collection:
    name: str
    seed: int
    n: int
    scopes: int
    query_terms: int
    gap_s: float


COLLECTIONS = (
    Collection("conversations", seed=1, n=500, scopes=3, query_terms=3, gap_s=3600.0),
    Collection("many terms, short gap", seed=2, n=200, scopes=5, query_terms=8, gap_s=900.0),
    Collection("one scope, one term", seed=3, n=60, scopes=1, query_terms=1, gap_s=3600.0),
    Collection("three memories", seed=4, n=3, scopes=2, query_terms=2, gap_s=3600.0),
    Collection("one memory", seed=5, n=1, scopes=1, query_terms=2, gap_s=3600.0),
)
WEIGHT_SETS = {"hybrid": HYBRID, "keyword only": KEYWORD_ONLY}
GRAPH_WEIGHT = 0.3
MAY = datetime(2023, 5, 1, tzinfo=UTC).timestamp()
PERIODS = [(MAY + 86400 * 10, MAY + 86400 * 17), (MAY + 86400 * 40, MAY + 86400 * 41)]
MONTHS = [6]


def random_evidence(c: Collection, *, graph: bool) -> Evidence:
    """`c.n` memories in `c.scopes` scopes, handed over in shuffled order. Only `random.Random.random` draws
    them (its sequence is fixed for a seed across Python versions). Time steps are mostly minutes, sometimes
    zero, sometimes longer than the gap; cosines are sometimes one of a few values (exact ties)."""
    rng = random.Random(c.seed)
    t = MAY
    rows = []
    for seq in range(c.n):
        step = rng.random()
        t += 0.0 if step < 0.1 else 86400 * 3 * rng.random() if step > 0.9 else 1800 * rng.random()
        quantized = rng.random() < 0.3
        cos = float(int(rng.random() * 4)) / 4 if quantized else 1.1 * rng.random() - 0.2
        text_bits = sum(1 << k for k in range(c.query_terms) if rng.random() < 0.25)
        metadata_bits = sum(1 << (k + MAX_TERMS) for k in range(c.query_terms) if rng.random() < 0.1)
        rows.append(
            (
                seq,
                int(rng.random() * c.scopes),
                t,
                cos,
                float(1 + int(rng.random() * 30)),
                text_bits | metadata_bits,
                (0.0, 0.5, 1.0)[int(rng.random() * 3)] if rng.random() < 0.2 else 0.0,
                rng.random() if rng.random() < 0.3 else 0.0,
            )
        )
    shuffled = sorted(rows, key=lambda _: rng.random())
    columns = [list(col) for col in zip(*shuffled, strict=True)]
    return Evidence.from_columns(columns[:7], c.query_terms, columns[7] if graph else None)


def ranking_cases() -> dict[str, list[Scored]]:
    """Every collection x both weight sets x graph off / on (graph scores and a graph weight), all ranked."""
    out = {}
    for c in COLLECTIONS:
        for weights_name, weights in WEIGHT_SETS.items():
            for graph in (False, True):
                ev = random_evidence(c, graph=graph)
                w = replace(weights, graph=GRAPH_WEIGHT) if graph else weights
                name = f"{c.name} / {weights_name} / graph {'on' if graph else 'off'}"
                out[name] = rank(ev, periods=PERIODS, months=MONTHS, weights=w, gap_s=c.gap_s, limit=c.n)
    return out


def _record(s: Scored) -> list[int | float]:
    return [s.index, s.total, s.semantic, s.keyword, s.entity, s.temporal, s.context, s.graph]


def recorded(scored: list[Scored]) -> dict[str, Any]:
    """The first SHOWN records as JSON numbers (which round-trip floats exactly) and a digest of them all."""
    exact = "\n".join(" ".join(x.hex() if isinstance(x, float) else str(x) for x in _record(s)) for s in scored)
    return {
        "count": len(scored),
        "best": [_record(s) for s in scored[:SHOWN]],
        "sha256": hashlib.sha256(exact.encode()).hexdigest(),
    }


def test_rank_matches_the_recorded_scores() -> None:
    golden = json.loads(GOLDEN.read_text())
    now = {name: recorded(scored) for name, scored in ranking_cases().items()}
    assert set(now) == set(golden)
    for name, want in golden.items():
        assert now[name]["count"] == want["count"], name
        assert now[name]["best"] == want["best"], name  # exact: the same floats, to the last bit
        assert now[name]["sha256"] == want["sha256"], name  # ... and for every other memory


def test_the_recorded_cases_cover_what_rank_does() -> None:
    """The recorded evidence exercises every term of the score: neighbours, keywords, names, dates, graph, ties."""
    cases = ranking_cases()
    everything = [s for scored in cases.values() for s in scored]
    for part in ("semantic", "keyword", "entity", "temporal", "context", "graph"):
        assert any(getattr(s, part) > 0 for s in everything), part
    hybrid = cases["conversations / hybrid / graph on"]
    totals = [s.total for s in hybrid]
    assert len(set(totals)) < len(totals)  # exact ties, broken by recency


def write_golden() -> None:
    cases = {name: recorded(scored) for name, scored in ranking_cases().items()}
    text = json.dumps(cases, indent=1)
    # one record per line
    GOLDEN.write_text(re.sub(r"\[\s+([^\[\]]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m[1]) + "]", text) + "\n")


if __name__ == "__main__":
    write_golden()
