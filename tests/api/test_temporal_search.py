"""Time over HTTP: `reference_date` on every search route, event dates from verbatim and inferred adds, the
temporal score they earn on queries that name a time, and what a client reads back (`event_period`,
`structured_attributes.event`, `score_reasons`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.api.helpers import add_verbatim, assert_error, token_client
from tests.api.scripted_llm import client, facts, fake, llm, llm_server, prompt_of
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["client", "fake", "llm", "llm_server"]  # the scripted model's fixtures

ROUTES = {"v1": "/v1/memories/search/", "v2": "/v2/memories/search/", "v3": "/v3/memories/search/"}
REF = "2025-03-21"  # a Friday; "last week" is 2025-03-10..16


def search(api: httpx.Client, query: str, version: str = "v3", user: str = "alice", **body: Any) -> Any:
    entity = {"user_id": user} if version == "v1" else {"filters": {"user_id": user}}
    r = api.post(ROUTES[version], json={"query": query, "threshold": 0, **entity, **body})
    assert r.status_code == 200, r.text
    out = r.json()
    return out["results"] if isinstance(out, dict) else out


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def period(memory: dict[str, Any]) -> tuple[datetime, datetime, str] | None:
    p = memory["event_period"]
    return None if p is None else (when(p["start"]), when(p["end"]), p["granularity"])


def dinners(api: httpx.Client) -> dict[str, str]:
    """The issue's three dinners with one friend, told the day after each: the texts differ only by the city."""
    told = {"Tokyo": "2025-03-12T20:00:00Z", "Paris": "2025-03-21T09:00:00Z", "Lisbon": "2024-06-10T20:00:00Z"}
    return {
        city: add_verbatim(api, f"I had dinner with Maya in {city} yesterday.", timestamp=ts)[0]
        for city, ts in told.items()
    }


# ----------------------------------------------------------------------------------------------
# reference_date and the temporal score
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_reference_date_makes_the_dinner_of_the_time_asked_about_rank_first(api: httpx.Client, version: str) -> None:
    ids = dinners(api)
    asked = {
        "Which city did I have dinner with Maya in last week?": "Tokyo",
        "Which city did I have dinner with Maya in yesterday?": "Paris",
        "Which city did I have dinner with Maya in last year?": "Lisbon",
    }
    for query, city in asked.items():
        hits = search(api, query, version, reference_date=REF)
        assert hits[0]["id"] == ids[city], (query, [h["memory"] for h in hits])
        assert hits[0]["score_breakdown"]["temporal"] == pytest.approx(0.2)
        assert all(h["score_breakdown"]["temporal"] < 0.2 for h in hits[1:])


@pytest.mark.parametrize(
    "reference",
    [
        int(datetime(2025, 3, 21, 12, tzinfo=UTC).timestamp()),
        int(datetime(2025, 3, 21, 12, tzinfo=UTC).timestamp()) * 1000,  # JavaScript's Date.now()
        str(int(datetime(2025, 3, 21, 12, tzinfo=UTC).timestamp())),
        "2025-03-21T12:00:00Z",
        "2025-03-21T13:00:00+01:00",
    ],
)
def test_every_form_of_reference_date_means_the_same_now(api: httpx.Client, reference: Any) -> None:
    ids = dinners(api)
    hits = search(api, "Which city did I have dinner with Maya in last week?", reference_date=reference)
    assert hits[0]["id"] == ids["Tokyo"]
    hits = search(api, "Which city did I have dinner with Maya in last year?", reference_date=reference)
    assert hits[0]["id"] == ids["Lisbon"]


def test_without_reference_date_now_is_the_servers_clock(api: httpx.Client) -> None:
    oslo = add_verbatim(api, "I had dinner with Maya in Oslo yesterday.")[0]
    days_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    rome = add_verbatim(api, "I had dinner with Maya in Rome yesterday.", timestamp=days_ago)[0]
    hits = search(api, "Where did I have dinner with Maya yesterday?")
    assert hits[0]["id"] == oslo
    assert hits[0]["score_breakdown"]["temporal"] == pytest.approx(0.2)
    assert search(api, "Where did I have dinner with Maya 401 days ago?")[0]["id"] == rome


def test_the_timezone_extension_sets_the_querys_days(api: httpx.Client) -> None:
    """23:30 on the 20th in New York is already the 21st in UTC: "yesterday" is the 19th there."""
    ny_19th = add_verbatim(api, "Went bowling with Sam.", timestamp="2025-03-19T12:00:00-04:00")[0]
    r = api.put(
        f"/v1/memories/{ny_19th}/",
        json={"event_period": {"start": "2025-03-19T04:00:00Z", "end": "2025-03-20T04:00:00Z"}},
    )
    assert r.status_code == 200, r.text
    utc_20th = add_verbatim(api, "Went bowling with Kim.", timestamp="2025-03-20T12:00:00Z")[0]
    r = api.put(f"/v1/memories/{utc_20th}/", json={"event_period": {"start": "2025-03-20", "end": "2025-03-21"}})
    assert r.status_code == 200, r.text
    ref = "2025-03-21T03:30:00Z"
    in_utc = search(api, "Who did I go bowling with yesterday?", reference_date=ref)
    in_ny = search(api, "Who did I go bowling with yesterday?", reference_date=ref, timezone="America/New_York")
    assert in_utc[0]["id"] == utc_20th
    assert in_ny[0]["id"] == ny_19th


BAD = [
    ({"reference_date": "yesterday"}, "reference_date: invalid value 'yesterday'"),
    ({"reference_date": {}}, "reference_date: invalid value '{}'"),  # what a JS Date becomes in the TS SDK
    ({"reference_date": True}, "reference_date: invalid value 'True'"),
    ({"reference_date": "2025-13-01"}, "reference_date: invalid value '2025-13-01'"),
    ({"reference_date": REF, "timezone": "Mars/Olympus"}, "timezone: unknown time zone 'Mars/Olympus'"),
]


@pytest.mark.parametrize(("version", "key"), [("v1", "message"), ("v2", "message"), ("v3", "error")])
@pytest.mark.parametrize(("extra", "text"), BAD)
def test_an_invalid_reference_date_is_a_400_in_the_routes_shape(
    api: httpx.Client, version: str, key: str, extra: dict[str, Any], text: str
) -> None:
    entity = {"user_id": "alice"} if version == "v1" else {"filters": {"user_id": "alice"}}
    r = api.post(ROUTES[version], json={"query": "dinner last week", **entity, **extra})
    body = assert_error(r, 400, detail=text)
    assert text in body[key]


# ----------------------------------------------------------------------------------------------
# words that only look like dates move nothing
# ----------------------------------------------------------------------------------------------
def _scores(api: httpx.Client, query: str) -> list[tuple[str, float, dict[str, float]]]:
    return [(h["memory"], h["score"], h["score_breakdown"]) for h in search(api, query, reference_date="2024-12-01")]


@pytest.mark.parametrize(
    ("query", "texts", "month"),
    [
        (
            "Did May like the film?",
            ["May loved the film we saw.", "Tom fell asleep during the film.", "We ate popcorn at the cinema."],
            5,
        ),
        (
            "Will they march in the parade?",
            ["The band will march in the parade.", "The parade starts at noon.", "I bought a flag for the parade."],
            3,
        ),
    ],
)
def test_a_name_or_a_verb_that_is_also_a_month_moves_no_score(
    live_server: str, make_tenant: Callable[[], tuple[str, str]], query: str, texts: list[str], month: int
) -> None:
    """The same memories recorded in that month and in October score identically, and no hit gets a temporal
    score: the word is no date."""
    results = []
    for recorded_month in (month, 10):
        with token_client(live_server, make_tenant()[1]) as api:
            for i, text in enumerate(texts):
                add_verbatim(api, text, timestamp=f"2024-{recorded_month:02d}-0{i + 1}T10:00:00Z")
            results.append(_scores(api, query))
            assert all("score_reasons" not in h for h in search(api, query, reference_date="2024-12-01"))
    assert results[0] == results[1]
    assert all(breakdown["temporal"] == 0 for _, _, breakdown in results[0])


def test_score_reasons_only_on_queries_that_name_a_time(api: httpx.Client) -> None:
    ids = dinners(api)
    timed = search(api, "Which city did I have dinner with Maya in last week?", reference_date=REF)
    assert timed[0]["score_reasons"]["temporal"] == (
        'event 2025-03-11 (day) overlaps "last week" (2025-03-10..2025-03-16): 1.00'
    )
    assert all(isinstance(h["score_reasons"]["temporal"], str) for h in timed)
    assert all(isinstance(v, float) for v in timed[0]["score_breakdown"].values())  # the breakdown stays numbers
    plain = search(api, "Which city did I have dinner with Maya in?", reference_date=REF)
    assert {h["id"] for h in plain} == set(ids.values())
    assert all("score_reasons" not in h for h in plain)
    assert all(h["score_breakdown"]["temporal"] == 0 for h in plain)


# ----------------------------------------------------------------------------------------------
# event periods: verbatim adds, reads, updates, transfer
# ----------------------------------------------------------------------------------------------
def test_a_verbatim_add_reads_its_period_in_its_time_zone_and_every_read_shows_it(api: httpx.Client) -> None:
    """16:00 UTC on the 20th is 01:00 on the 21st in Tokyo: "yesterday" is Tokyo's 20th."""
    dated, plain = add_verbatim(
        api,
        "We had ramen with Ken yesterday.",
        "Ken likes ramen.",
        timestamp="2025-03-20T16:00:00Z",
        timezone="Asia/Tokyo",
    )
    expected = (datetime(2025, 3, 19, 15, tzinfo=UTC), datetime(2025, 3, 20, 15, tzinfo=UTC), "day")
    got = api.get(f"/v1/memories/{dated}/").json()
    listed = {m["id"]: m for m in api.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["results"]}
    found = {h["id"]: h for h in search(api, "ramen with Ken")}
    for read in (got, listed[dated], found[dated]):
        assert period(read) == expected
        attributes = read["structured_attributes"]
        assert set(attributes) == {
            "day",
            "hour",
            "year",
            "month",
            "minute",
            "quarter",
            "is_weekend",
            "day_of_week",
            "day_of_year",
            "week_of_year",
            "event",
        }
        assert (attributes["day"], attributes["hour"]) == (20, 16)  # created_at, as before
        assert attributes["event"] == {
            "year": 2025,
            "month": 3,
            "day": 20,
            "day_of_week": "thursday",
            "quarter": 1,
            "week_of_year": 12,
            "is_weekend": False,
            "granularity": "day",
        }
    for read in (api.get(f"/v1/memories/{plain}/").json(), listed[plain], found[plain]):
        assert read["event_period"] is None
        assert read["structured_attributes"]["event"] is None
    page = {m["id"]: m for m in api.get("/v1/memories/user/alice/").json()["results"]}
    assert period(page[dated]) == expected
    assert page[plain]["event_period"] is None
    [added] = api.get(f"/v1/memories/{dated}/history/").json()
    assert period(added) == expected


def test_an_unknown_add_time_zone_is_a_400(api: httpx.Client) -> None:
    r = api.post(
        "/v3/memories/add/",
        json={"messages": [{"role": "user", "content": "x"}], "user_id": "a", "infer": False, "timezone": "Nowhere"},
    )
    assert r.status_code == 400, r.text
    assert "timezone: unknown time zone 'Nowhere'" in r.text


def test_an_update_keeps_the_period_unless_the_new_text_or_the_client_names_another(api: httpx.Client) -> None:
    [mid] = add_verbatim(api, "Flew to Oslo last week.", timestamp="2025-03-21T12:00:00Z")
    week = (datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 3, 17, tzinfo=UTC), "week")
    assert period(api.get(f"/v1/memories/{mid}/").json()) == week

    def put(body: dict[str, Any]) -> dict[str, Any]:
        r = api.put(f"/v1/memories/{mid}/", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert period(put({"metadata": {"k": 1}})) == week
    assert period(put({"text": "Flew to Oslo with Ana."})) == week  # names no time: kept
    moved = put({"text": "Flew to Oslo on 2025-03-02."})  # read against when it was recorded
    assert period(moved) == (datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC), "day")
    given = put({"event_period": {"start": "2025-01-01", "end": "2025-04-01"}})
    assert period(given) == (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), "season")
    assert put({"event_period": None})["event_period"] is None
    history = api.get(f"/v1/memories/{mid}/history/").json()
    assert [(h["event"], period(h)) for h in history][-3:] == [
        ("UPDATE", (datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC), "day")),
        ("UPDATE", (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), "season")),
        ("UPDATE", None),
    ]
    r = api.put(f"/v1/memories/{mid}/", json={"event_period": {"start": "2025-02-01", "end": "2025-01-01"}})
    assert_error(r, 400, detail="event_period: end must be after start")
    batch = api.put(
        "/v1/batch/",
        json={"memories": [{"memory_id": mid, "event_period": {"start": "2024-05-01", "end": "2024-06-01"}}]},
    )
    assert batch.status_code == 200, batch.text
    assert period(api.get(f"/v1/memories/{mid}/").json()) == (
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 6, 1, tzinfo=UTC),
        "month",
    )


def test_periods_survive_export_and_import_and_a_mem0_dump_gets_them_from_its_text(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    add_verbatim(api, "Moved to Porto last month.", "Likes tea.", timestamp="2025-03-21T12:00:00Z")
    before = {
        m["memory"]: m["event_period"]
        for m in api.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["results"]
    }
    assert before["Moved to Porto last month."] is not None
    dump = api.get("/v1/memserver/export/").content
    with token_client(live_server, make_tenant()[1]) as empty:
        assert empty.post("/v1/memserver/import/", content=dump).status_code == 200
        listed = empty.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["results"]
        assert {m["memory"]: m["event_period"] for m in listed} == before
    mem0 = {
        "results": [
            {
                "id": "4c1f7a3e-2b5d-4e8f-9a6b-1c2d3e4f5a6b",
                "memory": "Ran a half marathon yesterday.",
                "user_id": "carol",
                "created_at": "2025-01-02T10:00:00Z",
            },
            {"memory": "Collects stamps.", "user_id": "carol"},
        ]
    }
    with token_client(live_server, make_tenant()[1]) as other:
        assert other.post("/v1/memserver/import/", content=orjson.dumps(mem0)).status_code == 200
        got = other.get("/v1/memories/4c1f7a3e-2b5d-4e8f-9a6b-1c2d3e4f5a6b/").json()
        assert period(got) == (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), "day")
        history = other.get(f"/v1/memories/{got['id']}/history/").json()
        assert len(history) == 1


# ----------------------------------------------------------------------------------------------
# inferred memories: the model's dates, leniently
# ----------------------------------------------------------------------------------------------
def infer(client: httpx.Client, text: str, **body: Any) -> httpx.Response:
    payload = {"messages": [{"role": "user", "content": text}], "user_id": "alice", "async_mode": False}
    return client.post("/v1/memories/", json={**payload, **body})


def fact(text: str, **extra: Any) -> dict[str, Any]:
    return {"text": text, "speaker": "user", "sources": [0], "categories": [], "action": "ADD", **extra}


def inferred(client: httpx.Client) -> dict[str, dict[str, Any]]:
    r = client.post("/v3/memories/", json={"filters": {"user_id": "alice"}})
    return {m["memory"]: m for m in r.json()["results"]}


def test_an_inferred_memory_takes_the_models_dates_as_days_of_the_adds_zone(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    llm.chat_replies.append(
        facts(
            fact("Moved to Lisbon in March 2025", event_start="2025-03-01", event_end="2025-03-31"),
            fact("Went to a concert on 2025-03-15", event_start="2025-03-15T20:00:00Z"),  # a datetime keeps its day
            fact("Likes jazz"),
        )
    )
    r = infer(
        client,
        "I moved to Lisbon this month, saw a concert last Saturday. I like jazz.",
        timestamp="2025-03-21T12:00:00Z",
        timezone="Europe/Lisbon",
    )
    assert r.status_code == 200, r.text
    assert "event_start" in str(llm.chat_requests()[0])  # the prompt asks for them
    got = inferred(client)
    assert period(got["Moved to Lisbon in March 2025"]) == (
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2025, 3, 31, 23, tzinfo=UTC),  # Lisbon's 1 April began at 23:00 UTC (summer time from 30 March)
        "month",
    )
    assert period(got["Went to a concert on 2025-03-15"]) == (
        datetime(2025, 3, 15, tzinfo=UTC),
        datetime(2025, 3, 16, tzinfo=UTC),
        "day",
    )
    assert got["Likes jazz"]["event_period"] is None


def test_a_bad_model_date_is_dropped_with_a_note_and_the_fact_text_is_read_instead(
    client: httpx.Client, llm: FakeOpenAI
) -> None:
    llm.chat_replies.append(
        facts(fact("Ran a marathon on 2025-04-12", event_start="last spring", event_end="3025-01-01"))
    )
    r = infer(client, "I ran a marathon on April 12.", timestamp="2025-04-20T12:00:00Z")
    assert r.status_code == 200, r.text
    assert len(llm.chat_requests()) == 1  # no repair round trip for a date
    got = inferred(client)["Ran a marathon on 2025-04-12"]
    assert period(got) == (datetime(2025, 4, 12, tzinfo=UTC), datetime(2025, 4, 13, tzinfo=UTC), "day")
    events = client.get("/v1/events/").json()["results"]
    notes = next(e for e in events if isinstance(e.get("metadata"), dict) and "notes" in e["metadata"])["metadata"][
        "notes"
    ]
    assert "a fact's event_start 'last spring' is not a date of 1900-2200 (YYYY-MM-DD); dropped" in notes
    assert "a fact's event_end '3025-01-01' is not a date of 1900-2200 (YYYY-MM-DD); dropped" in notes


def update_of(old: str, new: str, **dates: str) -> Callable[[dict[str, Any]], str]:
    """The model updates the memory shown as `old` (found under its ref in the prompt) to `new`."""

    def reply(body: dict[str, Any]) -> str:
        ref = int(re.search(rf"^ref (\d+): {re.escape(old)}", prompt_of(body), re.M)[1])  # type: ignore[index]
        return facts(fact(new, action="UPDATE", ref=ref, **dates))

    return reply


def test_an_inferred_update_keeps_the_period_unless_the_reply_dates_it(client: httpx.Client, llm: FakeOpenAI) -> None:
    llm.chat_replies.append(facts(fact("Trains for a marathon", event_start="2025-01", event_end="2025-03")))
    first = infer(client, "I've been training for a marathon since January.", timestamp="2025-03-21T12:00:00Z")
    assert first.status_code == 200, first.text
    original = period(inferred(client)["Trains for a marathon"])
    assert original == (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), "season")
    llm.chat_script = update_of("Trains for a marathon", "Trains for a marathon with a coach")
    assert infer(client, "I have a coach for it now.", timestamp="2025-03-22T12:00:00Z").status_code == 200
    assert period(inferred(client)["Trains for a marathon with a coach"]) == original
    llm.chat_script = update_of(
        "Trains for a marathon with a coach",
        "Trained for a marathon until May",
        event_start="2025-01",
        event_end="2025-05",
    )
    assert infer(client, "I stopped training in May.", timestamp="2025-06-01T12:00:00Z").status_code == 200
    assert period(inferred(client)["Trained for a marathon until May"])[:2] == (
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 6, 1, tzinfo=UTC),
    )
