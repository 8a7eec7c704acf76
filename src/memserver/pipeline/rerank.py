"""Reordering the hits of a `rerank: true` search: by a reranker's relevance, or by diversity without one.

Each function takes the hits as parallel lists in hybrid order (best first) and returns an `Ordering`: every
index exactly once, in the new order, and the value each hit's `score_breakdown` gains (`rerank`, the relevance
0..1; `diversity`, how much the hit was demoted for resembling better hits). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DIVERSITY_WINDOW = 100  # diversification reorders at most this many of the best hits
DIVERSITY_PENALTY = 0.3  # x the word overlap (Jaccard) with the most similar hit kept before


@dataclass
class Ordering:
    order: list[int]
    values: dict[int, float] = field(default_factory=dict)


def from_scores(scores: Sequence[tuple[int, float]], total: int) -> Ordering:
    """A reranker's (index, score) pairs, best first: those hits first, then the unscored in hybrid order."""
    ranked = [i for i, _ in scores]
    seen = set(ranked)
    return Ordering(ranked + [i for i in range(total) if i not in seen], dict(scores))


def from_ranking(ranking: Sequence[int], *, shown: int, total: int) -> Ordering:
    """An LLM's ranking of the first `shown` hits (1-based refs): the ranked first, scored 1 - position/shown
    (rank-derived, not a probability); the shown but left out next (0.0); the hits not shown last, unscored."""
    ranked = [r - 1 for r in ranking]
    values = {i: round(1 - p / shown, 6) for p, i in enumerate(ranked)}
    left_out = [i for i in range(shown) if i not in values]
    values |= dict.fromkeys(left_out, 0.0)
    return Ordering(ranked + left_out + list(range(shown, total)), values)


def diversify(scores: Sequence[float], texts: Sequence[str], k: int) -> Ordering:
    """Keep the best hit, then prefer hits that are not near-duplicates of those kept.

    Near-duplicates are judged by the words they share (Jaccard over words of 4+ letters), so a pool of
    restatements of one fact does not crowd out other facts. Only the best DIVERSITY_WINDOW hits are
    reordered (the rest follow in order), and each hit's largest overlap with the kept ones is updated once
    per kept hit: O(window^2) set operations, whatever k is. A hit's value is the penalty it carried when kept.
    """
    head = min(len(scores), DIVERSITY_WINDOW)
    words = [{w for w in texts[i].lower().split() if len(w) > 3} for i in range(head)]
    overlap = [0.0] * head
    remaining = list(range(head))
    chosen: list[int] = []
    values: dict[int, float] = {}
    while remaining and len(chosen) < k:
        best = max(remaining, key=lambda i: scores[i] - DIVERSITY_PENALTY * overlap[i])
        remaining.remove(best)
        chosen.append(best)
        values[best] = round(DIVERSITY_PENALTY * overlap[best], 6)
        kept = words[best]
        for i in remaining:
            o = len(words[i] & kept) / max(1, len(words[i] | kept))
            if o > overlap[i]:
                overlap[i] = o
    for i in remaining:
        values[i] = round(DIVERSITY_PENALTY * overlap[i], 6)
    values |= dict.fromkeys(range(head, len(scores)), 0.0)
    return Ordering(chosen + remaining + list(range(head, len(scores))), values)
