"""`as_of` (memserver extension): list, search and get show the memories as they stood at that moment, rebuilt
from the history and the supersede chains. A real memserver, the real `openai` SDK and a scripted model (the
supersede is an inferred add); every instant is a moment between two writes, taken from the clock the server
shares with the test.

The story: A, C and E are added; A is updated; B is added; C is superseded by D (an inferred add); E is
hard-deleted. At each instant list and search return exactly the texts of that moment, with `replaced_by`
as it was.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from harness.server import LiveServer
from tests.api.helpers import add_verbatim, assert_error, token_client
from tests.api.scripted_llm import fact, facts, fake, llm, llm_server, prompt_of
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["fake", "llm", "llm_server"]  # the scripted model's fixtures

A1, A2 = "Alice lives in Berlin", "Alice lives in Munich"
B = "Alice has a cat named Tom"
C, D = "Alice loves steak", "Alice is vegetarian"
E = "Alice's bank PIN is 4321"


def refs_in(prompt: str) -> dict[str, int]:
    """Memory text -> the ref the model's prompt shows it under."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^ref (\d+): (.*?)(?: \(noted [\d-]+\))?$", prompt, re.M)}


def instant() -> str:
    """Now, strictly between the write that just answered and the next one."""
    time.sleep(0.05)
    t = datetime.now(UTC)
    time.sleep(0.05)
    return t.isoformat()


@dataclass
class Story:
    key: str
    ids: dict[str, str]  # A, B, C, D, E -> memory id
    at: list[str]  # t0 (before anything) .. t4 (after the supersede, before E's deletion)

    def expected(self, i: int) -> dict[str, str | None]:
        """text -> replaced_by at instant i (5 = now)."""
        d = self.ids["D"]
        moments: list[dict[str, str | None]] = [
            {},
            {A1: None, C: None, E: None},
            {A2: None, C: None, E: None},
            {A2: None, B: None, C: None, E: None},
            {A2: None, B: None, C: d, D: None, E: None},
            {A2: None, B: None, C: d, D: None},
        ]
        return moments[i]


def wait_event(client: httpx.Client, event_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = client.get(f"/v1/event/{event_id}/").json()
        if event["status"] in ("SUCCEEDED", "FAILED"):
            return dict(event)
        time.sleep(0.05)
    raise AssertionError(f"event {event_id} did not finish")


@pytest.fixture(scope="module")
def story(llm_server: LiveServer, fake: FakeOpenAI, make_tenant: Callable[[], tuple[str, str]]) -> Story:
    key = make_tenant()[1]
    with token_client(llm_server.url, key) as api:
        at = [instant()]
        a, c, e = add_verbatim(api, A1, C, E)
        at.append(instant())
        r = api.put(f"/v1/memories/{a}/", json={"text": A2})
        assert r.status_code == 200, r.text
        at.append(instant())
        [b] = add_verbatim(api, B)
        at.append(instant())
        fake.chat_script = lambda body: facts(
            fact(C, action="DELETE", ref=refs_in(prompt_of(body))[C]), fact(D, sources=[0])
        )
        r = api.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": "I am vegetarian now."}], "user_id": "alice"},
        )
        assert r.status_code == 200, r.text
        event = wait_event(api, r.json()["event_id"])
        fake.chat_script = None
        assert sorted((x["event"], x["data"]["memory"]) for x in event["results"]) == [("ADD", D), ("DELETE", C)]
        d = next(x["id"] for x in event["results"] if x["event"] == "ADD")
        at.append(instant())
        assert api.delete(f"/v1/memories/{e}/").status_code == 200
    return Story(key=key, ids={"A": a, "B": b, "C": c, "D": d, "E": e}, at=at)


@pytest.fixture
def api(llm_server: LiveServer, story: Story) -> Iterator[httpx.Client]:
    with token_client(llm_server.url, story.key) as client:
        yield client


def state(items: list[dict[str, Any]]) -> dict[str, str | None]:
    """text -> replaced_by of a list or search result (each text once)."""
    out = {m["memory"]: m["replaced_by"] for m in items}
    assert len(out) == len(items), items
    return out


def list_at(api: httpx.Client, route: str, as_of: Any, **body: Any) -> list[dict[str, Any]]:
    if route == "v1":
        r = api.get("/v1/memories/", params={"user_id": "alice", **({"as_of": as_of} if as_of is not None else {})})
    else:
        payload = {"filters": {"user_id": "alice"}, **body, **({"as_of": as_of} if as_of is not None else {})}
        r = api.post(f"/{route}/memories/", json=payload)
    assert r.status_code == 200, r.text
    out = r.json()
    return list(out["results"] if isinstance(out, dict) else out)


def search_at(api: httpx.Client, route: str, query: str, as_of: Any, **body: Any) -> list[dict[str, Any]]:
    payload: dict[str, Any] = {"query": query, "top_k": 50, "threshold": 0, **body}
    if as_of is not None:
        payload["as_of"] = as_of
    if route == "v1":
        payload["user_id"] = "alice"
    else:
        payload["filters"] = {"user_id": "alice"}
    r = api.post(f"/{route}/memories/search/", json=payload)
    assert r.status_code == 200, r.text
    out = r.json()
    return list(out["results"] if isinstance(out, dict) else out)


# ----------------------------------------------------------------------------------------------
# the five instants, on every generation's list and search
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["v1", "v2", "v3"])
def test_list_at_each_instant_shows_exactly_the_memories_of_that_moment(
    api: httpx.Client, story: Story, route: str
) -> None:
    for i, t in enumerate(story.at):
        assert state(list_at(api, route, t)) == story.expected(i), (route, i)
    assert state(list_at(api, route, None)) == story.expected(5)


@pytest.mark.parametrize("route", ["v1", "v2", "v3"])
def test_search_at_each_instant_scores_the_memories_of_that_moment(api: httpx.Client, story: Story, route: str) -> None:
    for i, t in enumerate(story.at):
        assert state(search_at(api, route, "Alice", t)) == story.expected(i), (route, i)
    assert state(search_at(api, route, "Alice", None)) == story.expected(5)


def test_a_past_text_is_searched_with_its_own_words_and_vector(api: httpx.Client, story: Story) -> None:
    """At t1 A said Berlin: a search for Berlin finds it first, by its words (bm25) and its old vector."""
    then = search_at(api, "v3", "Which city is Berlin?", story.at[1])
    assert then[0]["memory"] == A1
    assert then[0]["id"] == story.ids["A"]
    assert then[0]["score_breakdown"]["bm25"] > 0
    now = search_at(api, "v3", "Which city is Berlin?", None)
    munich = next(h for h in now if h["id"] == story.ids["A"])
    assert munich["memory"] == A2
    assert munich["score_breakdown"]["bm25"] == 0
    assert then[0]["score_breakdown"]["semantic"] > munich["score_breakdown"]["semantic"]
    # semantic-only retrieval scores the old vector: the old text itself is a perfect match then, not now
    dense = search_at(api, "v3", A1, story.at[1], retrieval="semantic")
    assert dense[0]["memory"] == A1
    assert dense[0]["score"] == pytest.approx(1.0, abs=1e-3)
    today = next(h for h in search_at(api, "v3", A1, None, retrieval="semantic") if h["id"] == story.ids["A"])
    assert today["score"] < 0.95


def test_keyword_retrieval_at_an_instant_reads_the_past_words(api: httpx.Client, story: Story) -> None:
    def matched(query: str, t: str | None) -> list[str]:
        """The texts with keyword evidence, best first (a match's conversational neighbours get some too)."""
        hits = search_at(api, "v3", query, t, retrieval="keyword")
        return [h["memory"] for h in hits if h["score_breakdown"]["bm25"] > 0]

    assert matched("steak", story.at[3])[0] == C
    assert matched("PIN", story.at[4])[0] == E
    assert matched("PIN", None) == []
    assert matched("Berlin", story.at[1])[0] == A1
    assert matched("Berlin", story.at[2]) == []


def test_dates_of_a_memory_at_an_instant(api: httpx.Client, story: Story) -> None:
    """A memory keeps its created_at; updated_at is its last change up to the instant."""
    at1 = {m["memory"]: m for m in list_at(api, "v3", story.at[1])}
    at2 = {m["memory"]: m for m in list_at(api, "v3", story.at[2])}
    now = {m["memory"]: m for m in list_at(api, "v3", None)}
    assert at1[A1]["created_at"] == at2[A2]["created_at"] == now[A2]["created_at"]
    assert at1[A1]["updated_at"] == at1[A1]["created_at"]
    assert at2[A2]["updated_at"] == now[A2]["updated_at"] > at2[A2]["created_at"]
    assert now[C]["lifecycle_state"] == "superseded"
    assert {m["memory"]: m["lifecycle_state"] for m in list_at(api, "v3", story.at[3])}[C] == "active"
    assert at1[E]["id"] == story.ids["E"]


def test_latest_only_at_an_instant_hides_what_was_superseded_then(api: httpx.Client, story: Story) -> None:
    assert state(list_at(api, "v3", story.at[3], latest_only=True)) == story.expected(3)
    assert state(list_at(api, "v3", story.at[4], latest_only=True)) == {A2: None, B: None, D: None, E: None}
    assert C not in state(search_at(api, "v3", "Alice", story.at[4], latest_only=True))
    assert C in state(search_at(api, "v3", "Alice", story.at[3], latest_only=True))


def test_get_a_memory_as_it_was(api: httpx.Client, story: Story) -> None:
    ids = story.ids

    def get(mid: str, t: str | None) -> httpx.Response:
        return api.get(f"/v1/memories/{mid}/", params={"as_of": t} if t else {})

    assert get(ids["A"], story.at[1]).json()["memory"] == A1
    assert get(ids["A"], story.at[2]).json()["memory"] == A2
    assert_error(get(ids["A"], story.at[0]), 404, error="Memory not found!")
    assert_error(get(ids["B"], story.at[2]), 404)
    assert get(ids["C"], story.at[4]).json()["replaced_by"] == ids["D"]
    assert get(ids["C"], story.at[3]).json()["replaced_by"] is None
    assert get(ids["E"], story.at[4]).json()["memory"] == E
    assert_error(get(ids["E"], None), 404)


def test_pagination_at_an_instant_counts_the_moment(api: httpx.Client, story: Story) -> None:
    r = api.post("/v3/memories/", json={"filters": {"user_id": "alice"}, "as_of": story.at[4], "page_size": 2})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 5
    assert len(r.json()["results"]) == 2
    r = api.post(
        "/v3/memories/",
        json={"filters": {"user_id": "alice"}, "as_of": story.at[4]},
        params={"page": 3, "page_size": 2},
    )
    assert r.json()["count"] == 5
    assert len(r.json()["results"]) == 1


def test_filters_apply_to_the_memory_as_it_was(api: httpx.Client, story: Story) -> None:
    body = {"filters": {"AND": [{"user_id": "alice"}, {"keywords": {"icontains": "berlin"}}]}}
    r = api.post("/v3/memories/", json={**body, "as_of": story.at[1]})
    assert [m["memory"] for m in r.json()["results"]] == [A1]
    r = api.post("/v3/memories/", json={**body, "as_of": story.at[2]})
    assert r.json()["results"] == []
    r = api.post("/v3/memories/", json={"filters": {"user_id": "bob"}, "as_of": story.at[4]})
    assert r.json()["results"] == []


def test_an_exported_project_imports_with_its_past(
    api: httpx.Client, story: Story, llm_server: LiveServer, new_api_key: Callable[[], str]
) -> None:
    """History's new columns travel in the JSONL export: the copy answers as_of exactly as the original
    (its ids are renewed, this server holds the originals)."""

    def seen(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((m["memory"], m["replaced_by"] is not None, m["created_at"], m["updated_at"]) for m in items)

    def scores(client: httpx.Client, t: str) -> list[tuple[str, float]]:
        return [(h["memory"], h["score"]) for h in search_at(client, "v3", "Where does Alice live?", t)]

    dump = api.get("/v1/memserver/export/")
    assert dump.status_code == 200, dump.text
    with token_client(llm_server.url, new_api_key()) as copy:
        r = copy.post("/v1/memserver/import/", content=dump.content)
        assert r.status_code == 200, r.text
        for t in story.at:
            assert seen(list_at(copy, "v3", t)) == seen(list_at(api, "v3", t)), t
            assert scores(copy, t) == scores(api, t), t
        assert scores(copy, story.at[1])[0][0] == A1


# ----------------------------------------------------------------------------------------------
# the accepted forms, and what is refused
# ----------------------------------------------------------------------------------------------
def test_as_of_takes_iso_datetimes_dates_and_unix_seconds(api: httpx.Client, story: Story) -> None:
    t4 = datetime.fromisoformat(story.at[4])
    expected = story.expected(4)
    for form in (
        t4.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        t4.astimezone(UTC).replace(tzinfo=None).isoformat(),  # naive = UTC
        t4.astimezone(timezone(timedelta(hours=2))).isoformat(),
        t4.astimezone(timezone(timedelta(hours=-5))).isoformat(),
        t4.timestamp(),  # unix seconds, float
        f"{t4.timestamp():.6f}",  # as a string
        int(t4.timestamp() * 1000) + 1,  # milliseconds (a JS Date.now())
    ):
        assert state(list_at(api, "v3", form)) == expected, form
    assert state(list_at(api, "v3", int(datetime.fromisoformat(story.at[0]).timestamp()))) == {}
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert state(list_at(api, "v3", yesterday)) == {}  # a bare date is the end of that day (UTC)
    assert state(list_at(api, "v3", datetime.now(UTC).date().isoformat())) == story.expected(5)


@pytest.mark.parametrize("value", ["yesterday", "2025-13-01", {}, True, [1], "", "12:00"])
def test_an_invalid_as_of_is_a_400_in_each_routes_shape(api: httpx.Client, value: Any) -> None:
    shown = "as_of: invalid value"
    q = {"filters": {"user_id": "alice"}, "as_of": value}
    assert "error" in assert_error(api.post("/v3/memories/", json=q), 400, detail=shown)
    assert "message" in assert_error(api.post("/v2/memories/", json=q), 400, detail=shown)
    s = {"query": "Alice", **q}
    assert "error" in assert_error(api.post("/v3/memories/search/", json=s), 400, detail=shown)
    assert "message" in assert_error(api.post("/v2/memories/search/", json=s), 400, detail=shown)
    assert "message" in assert_error(
        api.post("/v1/memories/search/", json={"query": "Alice", "user_id": "alice", "as_of": value}), 400, detail=shown
    )
    if isinstance(value, str) and value:
        assert "message" in assert_error(
            api.get("/v1/memories/", params={"user_id": "alice", "as_of": value}), 400, detail=shown
        )
        assert "error" in assert_error(api.get(f"/v1/memories/{uuid.uuid4()}/", params={"as_of": value}), 400)


def test_as_of_now_or_later_is_todays_state(api: httpx.Client, story: Story) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert state(list_at(api, "v3", later)) == story.expected(5)
    assert state(search_at(api, "v3", "Alice", later)) == story.expected(5)


# ----------------------------------------------------------------------------------------------
# backdated adds, expiry at T
# ----------------------------------------------------------------------------------------------
def test_a_backdated_add_counts_at_its_timestamp(llm_server: LiveServer, new_api_key: Callable[[], str]) -> None:
    with token_client(llm_server.url, new_api_key()) as api:
        old = add_verbatim(api, "Ran the Berlin marathon", timestamp=int(datetime(2023, 9, 24, tzinfo=UTC).timestamp()))
        add_verbatim(api, "Bought new running shoes")
        assert state(list_at(api, "v3", "2023-09-23")) == {}
        assert state(list_at(api, "v3", "2023-09-24")) == {"Ran the Berlin marathon": None}
        assert state(list_at(api, "v3", "2024-01-01T00:00:00Z")) == {"Ran the Berlin marathon": None}
        assert [h["id"] for h in search_at(api, "v3", "marathon", "2024-01-01")] == old
        assert len(list_at(api, "v3", None)) == 2


def test_expiry_is_evaluated_at_the_instant(llm_server: LiveServer, new_api_key: Callable[[], str]) -> None:
    with token_client(llm_server.url, new_api_key()) as api:
        ts = int(datetime(2024, 1, 10, tzinfo=UTC).timestamp())
        add_verbatim(api, "Staying at the Hotel Adlon", timestamp=ts, expiration_date="2024-03-01")
        assert state(list_at(api, "v3", "2024-02-01")) == {"Staying at the Hotel Adlon": None}
        assert state(list_at(api, "v3", "2024-03-01")) == {"Staying at the Hotel Adlon": None}  # inclusive
        assert state(list_at(api, "v3", "2024-03-02")) == {}
        assert state(list_at(api, "v3", "2024-03-02", show_expired=True)) == {"Staying at the Hotel Adlon": None}
        assert state(search_at(api, "v3", "hotel", "2024-02-01")) == {"Staying at the Hotel Adlon": None}
        assert search_at(api, "v3", "hotel", "2024-03-02") == []
        assert list_at(api, "v3", None) == []
