"""The temporal test set over HTTP: each time expression a client may ask with ranks the memory whose event
dates fall in that time first, whichever of two near-identical texts carries them; the same question without
the expression keeps the order the words give; and a query that names no time scores the same whether the
memories have event dates or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.helpers import add_verbatim, token_client

REF = "2025-03-21T12:00:00Z"  # a Friday
TOLD = "2025-03-21T09:00:00Z"  # both memories are recorded the same morning: only their event dates differ
TEXTS = ("Played chess with Ana at the club.", "Played chess with Ana at the park.")
QUESTION = "Where did I play chess with Ana"

# (expression, the event days inside it, the event days outside it): [start, end) as dates
CASES = [
    ("yesterday", ("2025-03-20", "2025-03-21"), ("2025-03-14", "2025-03-15")),
    ("last week", ("2025-03-12", "2025-03-13"), ("2025-02-12", "2025-02-13")),
    ("this month", ("2025-03-05", "2025-03-06"), ("2025-01-15", "2025-01-16")),
    ("tomorrow", ("2025-03-22", "2025-03-23"), ("2025-03-29", "2025-03-30")),
    ("last year", ("2024-06-10", "2024-06-11"), ("2023-06-10", "2023-06-11")),
    ("in March", ("2023-03-15", "2023-03-16"), ("2023-07-15", "2023-07-16")),
    ("in March 2025", ("2025-03-03", "2025-03-04"), ("2024-03-03", "2024-03-04")),
    ("between January and February 2025", ("2025-01-20", "2025-01-21"), ("2024-11-20", "2024-11-21")),
    ("10 days ago", ("2025-03-11", "2025-03-12"), ("2025-02-11", "2025-02-12")),
    ("recently", ("2025-03-10", "2025-03-11"), ("2024-10-01", "2024-10-02")),
    ("currently", ("2025-03-18", "2025-03-19"), ("2023-01-01", "2023-01-02")),
    ("as of March 2025", ("2025-03-02", "2025-03-03"), ("2024-12-02", "2024-12-03")),
    ("last weekend", ("2025-03-15", "2025-03-16"), ("2025-03-08", "2025-03-09")),
    ("last summer", ("2024-07-04", "2024-07-05"), ("2024-10-04", "2024-10-05")),
]


def _dated(api: httpx.Client, user: str, periods: tuple[tuple[str, str], tuple[str, str]]) -> list[str]:
    ids = add_verbatim(api, *TEXTS, user_id=user, timestamp=TOLD)
    for mid, (start, end) in zip(ids, periods, strict=True):
        r = api.put(f"/v1/memories/{mid}/", json={"event_period": {"start": start, "end": end}})
        assert r.status_code == 200, r.text
    return ids


def _search(api: httpx.Client, query: str, user: str, **body: Any) -> list[dict[str, Any]]:
    r = api.post(
        "/v3/memories/search/",
        json={"query": query, "filters": {"user_id": user}, "threshold": 0, "reference_date": REF, **body},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


@pytest.mark.parametrize(("expression", "inside", "outside"), CASES, ids=[c[0] for c in CASES])
def test_each_time_expression_ranks_the_memory_of_that_time_first(
    api: httpx.Client, expression: str, inside: tuple[str, str], outside: tuple[str, str]
) -> None:
    """Two users hold the same two texts with the event dates swapped: the time asked about, not the wording,
    decides which comes first."""
    club_then = _dated(api, "u1", (inside, outside))[0]
    park_then = _dated(api, "u2", (outside, inside))[1]
    for user, expected in (("u1", club_then), ("u2", park_then)):
        hits = _search(api, f"{QUESTION} {expression}?", user)
        assert hits[0]["id"] == expected, (expression, user, [(h["memory"], h["score_breakdown"]) for h in hits])
        assert hits[0]["score_breakdown"]["temporal"] == pytest.approx(0.2)
        assert hits[1]["score_breakdown"]["temporal"] < 0.2
        assert "overlaps" in hits[0]["score_reasons"]["temporal"]
    # without the expression the words alone decide: both users get the same text first, and no temporal score
    plain = [_search(api, f"{QUESTION}?", user) for user in ("u1", "u2")]
    assert plain[0][0]["memory"] == plain[1][0]["memory"]
    assert all(h["score_breakdown"]["temporal"] == 0 and "score_reasons" not in h for p in plain for h in p)


def test_a_query_naming_no_time_scores_the_same_with_or_without_event_dates(
    live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    texts = [
        "I had dinner with Maya in Tokyo last week.",
        "Maya moved to Lisbon last year.",
        "Maya likes ramen.",
        "We visited Paris in March 2024.",
    ]
    results = []
    for keep in (True, False):
        with token_client(live_server, make_tenant()[1]) as api:
            ids = add_verbatim(api, *texts, timestamp="2025-03-21T10:00:00Z")
            for mid in ids:
                r = api.put(f"/v1/memories/{mid}/", json={"metadata": {"n": 1}} if keep else {"event_period": None})
                assert r.status_code == 200, r.text
                assert (r.json()["event_period"] is not None) == (keep and mid != ids[2])
            hits = _search(api, "What do I know about Maya and her travels?", "alice")
            results.append([(h["memory"], h["score"], h["score_breakdown"]) for h in hits])
    assert results[0] == results[1]
    assert len(results[0]) == len(texts)
