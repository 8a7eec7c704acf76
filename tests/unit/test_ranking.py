"""Hybrid ranking (pipeline.ranking): how each kind of evidence moves a memory's score."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from memserver.pipeline.ranking import KEYWORD_ONLY, Evidence, Weights, rank

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
