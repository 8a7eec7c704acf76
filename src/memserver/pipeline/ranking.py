"""Hybrid ranking (no I/O): one 0..1 score per memory from dense, keyword, name, date and
conversational evidence.

Storage hands over, for every memory in the scope (or, for scopes too large to scan, for the union
of its HNSW and full-text candidates), a few numbers: its cosine similarity to the query, which of
the query's stemmed terms its text and its metadata contain, its length in terms, the share of the query's names it
mentions, when it was recorded, its scope and insertion order. From those:

* semantic: cosine similarity to the query, and the same averaged with the memory's
  conversational neighbours (the memories added just before and after it in the same scope,
  recorded within `gap_s` of each other, weighted 1/2);
* keyword: BM25 (k1=1, b=0: no length normalisation; Postgres' english stemming and stop words;
  term frequency 1 for a word in the memory's text, 1/2 for one in its metadata's values, 3/2 for
  both; IDF over the scored memories) over the memory, and BM25F over its neighbourhood (two
  memories each side, the outer ones weighted 1/2), each divided by the query's total IDF: the
  share of the query that the memory matches, in [0, 1];
* entity: the share of the names in the query that the memory mentions;
* time: whether the memory was recorded in a period the query names (or in, or a week before the
  end of, a month it names); with the memories' event dates (`events`), how well the period each is about
  fits the times named (`pipeline.temporal`), recorded dates counting less for a memory that has one;
* graph (graph-aware search, weight 0 unless configured): how closely a relation of the memory links it
  to an entity the query names (scored by storage: `GraphReads.memory_scores`).

total = the weighted sum (weights in `Weights`) + `neighbour` x the best neighbour's sum, and the
reported score is tanh(total): a fixed 0..1 scale whatever the query or the collection. A purely
semantic match scores about its cosine similarity; keyword, name, date and context evidence add.
Everything is vectorised over the candidates (numpy); ties are broken by recency (insertion order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from memserver.pipeline import temporal
from memserver.pipeline.temporal import TemporalQuery

MAX_TERMS = 8  # query terms scored by BM25 (distinct stemmed words; queries are short)
WEEK_S = 7 * 86400.0
_S = TypeVar("_S", bound=np.generic)  # an array's element type, kept by `_shifted`


@dataclass(frozen=True)
class Weights:
    """Weights of the hybrid score (see the module docstring)."""

    dense: float = 0.5
    dense_context: float = 0.5
    bm25: float = 0.5
    bm25_context: float = 0.5
    entity: float = 0.2
    time: float = 0.2
    neighbour: float = 0.2
    graph: float = 0.0
    # BM25 term saturation and length normalisation. b = 0: memories are a sentence or two, and a
    # longer one is no less about a word it contains (on LoCoMo, b = 0.75 loses 1.2 points of frac@10).
    k1: float = 1.0
    b: float = 0.0
    # A query word found in the memory's metadata (a topic, a label) counts this much of one found in
    # its text.
    metadata_tf: float = 0.5


HYBRID = Weights()
KEYWORD_ONLY = Weights(dense=0, dense_context=0, entity=0, time=0, neighbour=0)


@dataclass
class Evidence:
    """What storage knows about each candidate memory: parallel arrays, in any order."""

    seq: NDArray[np.int64]  # insertion order
    scope: NDArray[np.int64]  # one value per exact (user, agent, app, run) scope
    created: NDArray[np.float64]  # epoch seconds
    cos: NDArray[np.float64]  # cosine similarity to the query
    length: NDArray[np.float64]  # terms in the memory's tsvector
    terms: NDArray[np.int64]  # bit k: its text contains the query's k-th term; bit k + 8: its metadata does
    names: NDArray[np.float64]  # share of the query's names it mentions
    query_terms: int  # distinct stemmed terms in the query (at most MAX_TERMS)
    graph: NDArray[np.float64] | None = None  # graph score (0..1); None: no memory has one
    # the period each memory is about, epoch seconds (NaN: none); read only when the query names a time
    event_start: NDArray[np.float64] | None = None
    event_end: NDArray[np.float64] | None = None

    @classmethod
    def from_columns(cls, columns: list[list[Any]], query_terms: int, graph: list[float] | None = None) -> Evidence:
        """Columns (seq, scope, created, cos, length, terms, names[, event_start, event_end]), each one value per
        memory; `graph` likewise, when the query names graph entities."""
        seq, scope, created, cos, length, terms, names = columns[:7]
        events = columns[7:9] if len(columns) >= 9 else None
        return cls(
            seq=np.asarray(seq, dtype=np.int64),
            scope=np.asarray(scope, dtype=np.int64),
            created=np.asarray(created, dtype=np.float64),
            cos=np.asarray(cos, dtype=np.float64),
            length=np.asarray(length, dtype=np.float64),
            terms=np.asarray(terms, dtype=np.int64),
            names=np.asarray(names, dtype=np.float64),
            query_terms=query_terms,
            graph=None if graph is None else np.asarray(graph, dtype=np.float64),
            event_start=None if events is None else np.asarray(events[0], dtype=np.float64),
            event_end=None if events is None else np.asarray(events[1], dtype=np.float64),
        )


@dataclass
class Scored:
    index: int  # position in the Evidence arrays
    total: float
    semantic: float
    keyword: float
    entity: float
    temporal: float
    context: float
    graph: float = 0.0


def rank(
    ev: Evidence,
    *,
    periods: list[tuple[float, float]],
    months: list[int],
    weights: Weights = HYBRID,
    gap_s: float = 3600.0,
    limit: int = 10,
    events: TemporalQuery | None = None,
) -> list[Scored]:
    """The `limit` best candidates, best first (ties: the most recently added first).

    `periods` and `months` are the recorded-date windows of the times the query names; `events` the same times
    for the memories' event dates (`Evidence.event_start`), when the query names any.

    The arrays are put in conversational order (by scope, then insertion) so that a memory's neighbours are the
    rows next to it; every score is computed in that order, and `Scored.index` maps back to `ev`."""
    n = len(ev.seq)
    if n == 0:
        return []
    order = np.lexsort((ev.seq, ev.scope))  # conversational order within each scope
    t, cos, length = ev.created[order], ev.cos[order], ev.length[order]
    tf = _term_frequencies(ev.terms[order], weights.metadata_tf)
    near = Neighbours.within(ev.scope[order], t, gap_s)
    window_length, window_tf = near.window_sum(length), near.window_sum(tf)
    idf = _idf(tf)
    query_idf = max(float(idf[: ev.query_terms].sum()), 1e-9)  # what matching every query term would score
    k1, b = weights.k1, weights.b

    semantic = weights.dense * np.maximum(cos, 0) + weights.dense_context * np.maximum(near.mean_cos(cos), 0)
    # the share of the query each matches, in [0, 1]; a window is scaled for up to 2 matches per term
    own_share = np.minimum(1, _bm25(tf, length, idf, k1, b) / query_idf)
    window_share = np.minimum(1, _bm25(window_tf, window_length, idf, k1, b) / (2 * query_idf))
    keyword = weights.bm25 * own_share + weights.bm25_context * window_share
    entity = weights.entity * ev.names[order]
    recorded = _in_time(t, periods, months)
    if events is not None and ev.event_start is not None and ev.event_end is not None:
        recorded = temporal.fit(recorded, t, ev.event_start[order], ev.event_end[order], events)
    temporal_score = weights.time * recorded
    graph = weights.graph * ev.graph[order] if ev.graph is not None else np.zeros(n)
    base = semantic + keyword + entity + temporal_score + graph
    # a memory is also partly as relevant as its best neighbour
    context = weights.neighbour * near.best_of(base)
    total = base + context

    best = np.lexsort((-ev.seq[order], -total))[:limit]
    return [
        Scored(
            index=int(order[i]),
            total=float(total[i]),
            semantic=float(semantic[i]),
            keyword=float(keyword[i]),
            entity=float(entity[i]),
            temporal=float(temporal_score[i]),
            context=float(context[i]),
            graph=float(graph[i]),
        )
        for i in best
    ]


@dataclass(frozen=True)
class Neighbours:
    """Conversational neighbours, over memories in conversational order. At row i, `prev1` / `next1`: the row
    just before / after is a neighbour (same scope, recorded within `gap_s`); `prev2` / `next2`: so is the row
    two before / after (a neighbour of that first neighbour, by the same rule)."""

    prev1: NDArray[np.bool_]
    next1: NDArray[np.bool_]
    prev2: NDArray[np.bool_]
    next2: NDArray[np.bool_]

    @classmethod
    def within(cls, scope: NDArray[np.int64], t: NDArray[np.float64], gap_s: float) -> Neighbours:
        prev1 = _same_scope(scope, 1) & _within_gap(_shifted(t, 1), t, gap_s)
        next1 = _same_scope(scope, -1) & _within_gap(_shifted(t, -1), t, gap_s)
        return cls(
            prev1=prev1,
            next1=next1,
            prev2=prev1 & _same_scope(scope, 2) & _within_gap(_shifted(t, 2), _shifted(t, 1), gap_s),
            next2=next1 & _same_scope(scope, -2) & _within_gap(_shifted(t, -2), _shifted(t, -1), gap_s),
        )

    def window_sum(self, a: NDArray[np.float64]) -> NDArray[np.float64]:
        """`a` summed over each memory's window: itself, its first neighbours, half of its second ones (a 2-D
        `a`, a column per query term, column by column)."""
        rows = (slice(None), None) if a.ndim == 2 else (slice(None),)  # a column per row when `a` is 2-D
        total: NDArray[np.float64] = (
            a
            + self.prev1[rows] * _shifted(a, 1)
            + self.next1[rows] * _shifted(a, -1)
            + 0.5 * self.prev2[rows] * _shifted(a, 2)
            + 0.5 * self.next2[rows] * _shifted(a, -2)
        )
        return total

    def mean_cos(self, cos: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each memory's cosine averaged with its first neighbours', which weigh 1/2 each."""
        weighted = cos + 0.5 * self.prev1 * _shifted(cos, 1) + 0.5 * self.next1 * _shifted(cos, -1)
        mean: NDArray[np.float64] = weighted / (1 + 0.5 * self.prev1 + 0.5 * self.next1)
        return mean

    def best_of(self, score: NDArray[np.float64]) -> NDArray[np.float64]:
        """The better of the two first neighbours' `score` (0 without a neighbour)."""
        best: NDArray[np.float64] = np.maximum(self.prev1 * _shifted(score, 1), self.next1 * _shifted(score, -1))
        return best


def _shifted(a: NDArray[_S], k: int) -> NDArray[_S]:
    """a[i - k] at i (k > 0: the k-th row before; k < 0: after); zeros past the ends."""
    out = np.zeros_like(a)
    if k > 0:
        out[k:] = a[:-k]
    else:
        out[:k] = a[-k:]
    return out


def _same_scope(scope: NDArray[np.int64], k: int) -> NDArray[np.bool_]:
    """At i: whether the row k before (k > 0) or after (k < 0) has the same scope; False past the ends."""
    out = np.zeros(len(scope), dtype=bool)
    if k > 0:
        out[k:] = scope[k:] == scope[:-k]
    else:
        out[:k] = scope[:k] == scope[-k:]
    return out


def _within_gap(a: NDArray[np.float64], b: NDArray[np.float64], gap_s: float) -> NDArray[np.bool_]:
    near: NDArray[np.bool_] = np.abs(a - b) <= gap_s
    return near


def _term_frequencies(terms: NDArray[np.int64], metadata_tf: float) -> NDArray[np.float64]:
    """A row per memory, a column per query term (of MAX_TERMS): 1 for a term in its text, `metadata_tf` for
    one in its metadata, the sum for both; decoded from the `Evidence.terms` bitmask."""
    bits = terms[:, None]
    in_text = (bits >> np.arange(MAX_TERMS)) & 1
    in_metadata = (bits >> np.arange(MAX_TERMS, 2 * MAX_TERMS)) & 1
    tf: NDArray[np.float64] = in_text + metadata_tf * in_metadata
    return tf


def _idf(tf: NDArray[np.float64]) -> NDArray[np.float64]:
    """BM25's IDF of each term over the scored memories (its document frequency: the memories that hold it)."""
    df = (tf > 0).sum(axis=0)
    idf: NDArray[np.float64] = np.log(1 + (len(tf) - df + 0.5) / (df + 0.5))
    return idf


def _bm25(
    tf: NDArray[np.float64], length: NDArray[np.float64], idf: NDArray[np.float64], k1: float, b: float
) -> NDArray[np.float64]:
    """BM25 of each row of `tf` (term frequencies, a column per term), `length` terms long."""
    norm = k1 * (1 - b + b * length / max(float(length.mean()), 1.0))
    score: NDArray[np.float64] = (idf * tf * (k1 + 1) / (tf + norm[:, None])).sum(axis=1)
    return score


def _in_time(t: NDArray[np.float64], periods: list[tuple[float, float]], months: list[int]) -> NDArray[np.float64]:
    """1.0 where the memory was recorded in one of the periods, or in (or a week after) one of the months."""
    hit = np.zeros(len(t), dtype=bool)
    for start, end in periods:
        hit |= (t >= start) & (t < end)
    if months:
        wanted = np.asarray(months)
        for offset in (0.0, WEEK_S):
            month = (
                np.floor(t - offset).astype(np.int64).astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
                % 12
            ) + 1
            hit |= np.isin(month, wanted)
    return hit.astype(np.float64)
