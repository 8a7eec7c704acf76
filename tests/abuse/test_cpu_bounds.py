"""Review finding 3: no step of a search is worse than linear in its input, and CPU-heavy steps stay off
the event loop.

The bounds below are generous (tens of times the expected cost on a loaded 2-core machine): they do not
measure speed, they catch quadratic or cubic work, which at these sizes takes minutes to hours.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from memserver.pipeline import query, rerank

BOUND_S = 20.0


def finishes(code: str, bound_s: float = BOUND_S) -> str:
    """Run `code` in a child interpreter (a regex holds the GIL, so no thread can time it out);
    fail if it has not finished within bound_s. Returns what it printed."""
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=bound_s, check=True)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after {bound_s}s: super-linear work") from None
    return done.stdout.strip()


def finishes_in_thread(fn: Callable[[], Any], bound_s: float = BOUND_S) -> Any:
    """Pure Python yields the GIL, so a thread can bound it."""
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.setdefault("v", fn()), daemon=True)
    t.start()
    t.join(bound_s)
    assert not t.is_alive(), f"still running after {bound_s}s: super-linear work"
    return out["v"]


def test_name_regex_does_not_backtrack() -> None:
    code = "from memserver.pipeline.query import names; print(names({!r} * {}))"
    assert finishes(code.format("A-", 250_000)) == "[]"
    assert finishes(code.format("Ab-", 100_000)).startswith("['ab-ab-")


def test_period_scan_is_linear() -> None:
    code = "from memserver.pipeline.query import periods; f, m = periods({!r} * {}); print(len(f) > 0, m)"
    assert finishes(code.format("in may 2023 ", 20_000)) == "True []"
    assert finishes(code.format("in july ", 40_000)) == "False [7]"


def test_query_hints_keep_their_meaning() -> None:
    assert query.names("What did Caroline's friend Jean-Luc say to Mel-?") == ["caroline", "jean-luc", "mel"]


def test_rerank_of_1000_hits_is_bounded() -> None:
    words = [f"word{i:05d}" for i in range(4 * 1000)]
    texts = [" ".join(words[i : i + 30]) for i in range(1000)]
    scores = [1.0 - i / 2000 for i in range(1000)]
    out = finishes_in_thread(lambda: rerank.diversify(scores, texts, 1000))
    assert sorted(out.order) == list(range(1000))
    assert out.order[0] == 0


def test_rerank_still_demotes_near_duplicates() -> None:
    texts = [
        "alice moved to austin last month",
        "alice moved to austin last month indeed",
        "bob likes climbing mountains",
    ]
    assert rerank.diversify([0.9, 0.85, 0.8], texts, 3).order == [0, 2, 1]
