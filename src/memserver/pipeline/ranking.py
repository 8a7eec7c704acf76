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
  end of, a month it names);
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

MAX_TERMS = 8  # query terms scored by BM25 (distinct stemmed words; queries are short)
WEEK_S = 7 * 86400.0
_S = TypeVar("_S", bound=np.generic)  # an array's element type, kept by `shifted`


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

    @classmethod
    def from_columns(cls, columns: list[list[Any]], query_terms: int, graph: list[float] | None = None) -> Evidence:
        """Columns (seq, scope, created, cos, length, terms, names), each one value per memory; `graph`
        likewise, when the query names graph entities."""
        seq, scope, created, cos, length, terms, names = columns
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
) -> list[Scored]:
    """The `limit` best candidates, best first (ties: the most recently added first)."""
    n = len(ev.seq)
    if n == 0:
        return []
    order = np.lexsort((ev.seq, ev.scope))  # conversational order within each scope
    scope, t = ev.scope[order], ev.created[order]
    cos, dl = ev.cos[order], ev.length[order]
    bits = ev.terms[order][:, None]
    in_text = (bits >> np.arange(MAX_TERMS)) & 1
    in_metadata = (bits >> np.arange(MAX_TERMS, 2 * MAX_TERMS)) & 1
    tf = in_text + weights.metadata_tf * in_metadata

    def shifted(a: NDArray[_S], k: int) -> NDArray[_S]:
        """a[i - k] at i (k > 0: the k-th memory before; k < 0: after); zeros past the ends."""
        out = np.zeros_like(a)
        if k > 0:
            out[k:] = a[:-k]
        else:
            out[:k] = a[-k:]
        return out

    def same_scope(k: int) -> NDArray[np.bool_]:
        out = np.zeros(n, dtype=bool)
        if k > 0:
            out[k:] = scope[k:] == scope[:-k]
        else:
            out[:k] = scope[:k] == scope[-k:]
        return out

    def close(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.bool_]:
        near: NDArray[np.bool_] = np.abs(a - b) <= gap_s
        return near

    # neighbours: consecutive memories of one scope, recorded within gap_s of each other
    vp1 = same_scope(1) & close(shifted(t, 1), t)
    vn1 = same_scope(-1) & close(shifted(t, -1), t)
    vp2 = vp1 & same_scope(2) & close(shifted(t, 2), shifted(t, 1))
    vn2 = vn1 & same_scope(-2) & close(shifted(t, -2), shifted(t, -1))

    def around(a: NDArray[np.float64]) -> NDArray[np.float64]:
        """Summed over the neighbourhood: itself, both neighbours, half of the second ones."""

        def m(v: NDArray[np.bool_]) -> NDArray[np.bool_]:  # a column per row when `a` is 2-D
            return v[:, None] if a.ndim == 2 else v

        return (
            a
            + m(vp1) * shifted(a, 1)
            + m(vn1) * shifted(a, -1)
            + 0.5 * m(vp2) * shifted(a, 2)
            + 0.5 * m(vn2) * shifted(a, -2)
        )

    cos_ctx = (cos + 0.5 * vp1 * shifted(cos, 1) + 0.5 * vn1 * shifted(cos, -1)) / (1 + 0.5 * vp1 + 0.5 * vn1)
    wl, wtf = around(dl), around(tf)

    df = (tf > 0).sum(axis=0)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    qidf = max(float(idf[: ev.query_terms].sum()), 1e-9)
    k1, b = weights.k1, weights.b

    def bm25(f: NDArray[np.float64], length: NDArray[np.float64]) -> NDArray[np.float64]:
        norm = k1 * (1 - b + b * length / max(float(length.mean()), 1.0))
        score: NDArray[np.float64] = (idf * f * (k1 + 1) / (f + norm[:, None])).sum(axis=1)
        return score

    semantic = weights.dense * np.maximum(cos, 0) + weights.dense_context * np.maximum(cos_ctx, 0)
    keyword = weights.bm25 * np.minimum(1, bm25(tf, dl) / qidf) + weights.bm25_context * np.minimum(
        1, bm25(wtf, wl) / (2 * qidf)
    )
    entity = weights.entity * ev.names[order]
    temporal = weights.time * _in_time(t, periods, months)
    graph = weights.graph * ev.graph[order] if ev.graph is not None else np.zeros(n)
    base = semantic + keyword + entity + temporal + graph
    # a memory is also partly as relevant as its best neighbour
    context = weights.neighbour * np.maximum(vp1 * shifted(base, 1), vn1 * shifted(base, -1))
    total = base + context

    best = np.lexsort((-ev.seq[order], -total))[:limit]
    return [
        Scored(
            index=int(order[i]),
            total=float(total[i]),
            semantic=float(semantic[i]),
            keyword=float(keyword[i]),
            entity=float(entity[i]),
            temporal=float(temporal[i]),
            context=float(context[i]),
            graph=float(graph[i]),
        )
        for i in best
    ]


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
