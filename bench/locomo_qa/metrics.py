"""Scores of an answer against the gold answer, and their aggregation per category id.

F1 is Mem0's evaluation's (`evaluation/metrics/utils.py` `calculate_metrics`, from A-Mem): the SETS of lower-case
tokens, with `.`, `,`, `!` and `?` turned into spaces, precision and recall over the sets. BLEU-1 is NLTK's
sentence BLEU with weights (1, 0, 0, 0): brevity penalty times clipped unigram precision, 0 without a common
unigram (smoothing does not change BLEU-1), over a regex word/punctuation tokenizer standing in for NLTK's
`word_tokenize` (not installed here): close to, not identical with, Mem0's BLEU-1.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable


def simple_tokenize(text: str) -> list[str]:
    return str(text).lower().replace(".", " ").replace(",", " ").replace("!", " ").replace("?", " ").split()


def f1(prediction: str, reference: str) -> float:
    prediction, reference = str(prediction).strip(), str(reference).strip()
    if not prediction or not reference:
        return 0.0
    pred, ref = set(simple_tokenize(prediction)), set(simple_tokenize(reference))
    if not pred or not ref:
        return 0.0
    common = pred & ref
    precision, recall = len(common) / len(pred), len(common) / len(ref)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _words(text: str) -> list[str]:
    return re.findall(r"\w+(?:'\w+)?|[^\w\s]", text.lower())


def bleu1(prediction: str, reference: str) -> float:
    pred, ref = _words(str(prediction)), _words(str(reference))
    if not pred or not ref:
        return 0.0
    ref_counts = Counter(ref)
    clipped = sum(min(n, ref_counts[w]) for w, n in Counter(pred).items())
    if not clipped:
        return 0.0
    precision = clipped / len(pred)
    brevity = 1.0 if len(pred) > len(ref) else math.exp(1 - len(ref) / len(pred))
    return brevity * precision


def mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return round(sum(vals) / len(vals), 4) if vals else None


def by_category(rows: list[tuple[int, float]], categories: Iterable[int]) -> dict[str, dict[str, float | int | None]]:
    """{"1": {"mean", "n"}, ..., "overall": {...}} of (category, value) rows."""
    out: dict[str, dict[str, float | int | None]] = {}
    for c in sorted(set(categories)):
        vals = [v for cat, v in rows if cat == c]
        out[str(c)] = {"mean": mean(vals), "n": len(vals)}
    out["overall"] = {"mean": mean(v for _, v in rows), "n": len(rows)}
    return out
