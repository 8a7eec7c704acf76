"""Dream synthesis over HTTP, against real memserver processes and the scripted model: the setting where the
Platform serves it (and who may change it), the scheduler of a running server writing pattern memories that
the events feed shows, reads per the Platform's table (default, `latest_only`, `include_merged`) on every
generation, patterns kept out of an add's reconciliation, and patterns through export and import."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from harness.server import LiveServer, served
from memserver.services import admin
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim, assert_error, token_client
from tests.api.scripted_llm import facts, fake, llm, llm_env, prompt_of
from tests.conftest import _in_thread
from tests.fakes import dream_llm
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["fake", "llm"]  # the scripted model's fixtures

COFFEE = [f"Had a flat white at the corner cafe, visit {i}." for i in range(3)]  # `coffee`-free on purpose
CONFIG = "/api/v1/orgs/organizations/{org}/projects/{project}/dream/config/"
RUNS = "/api/v1/orgs/organizations/{org}/projects/{project}/dream/runs/"


def cafe(body: dict[str, Any]) -> str:
    """The model: one pattern over every memory that mentions the cafe (updating it when it exists)."""
    p = dream_llm.parse(body)
    refs = p.refs("cafe")
    if len(refs) < 2:
        return dream_llm.reply()
    item: dict[str, Any] = {"text": f"User often visits the corner cafe ({len(refs)} visits).", "evidence": refs}
    if p.patterns:
        item["updates"] = 1
    return dream_llm.reply(item)


@pytest.fixture(scope="module")
def llm_server(database_url: str, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = llm_env(
        fake,
        MEMSERVER_DREAM__MIN_MEMORIES="3",
        MEMSERVER_DREAM__TICK_S="0.3",
        MEMSERVER_WORKER__POLL_INTERVAL_S="0.3",
    )
    with served(database_url, tmp_path_factory.mktemp("dream-server") / "memserver.log", **env) as server:
        yield server


class Org:
    """A fresh org and project on the Dream server: its OWNER's key, and keys made for the same member."""

    def __init__(self, server: LiveServer, database_url: str, ids: tuple[str, str, str]):
        self.org_id, self.project_id, key = ids
        self.server, self.database_url = server, database_url
        self.owner = token_client(server.url, key)
        self.org_name = self.owner.get(f"/api/v1/orgs/organizations/{self.org_id}/").json()["name"]

    def path(self, template: str) -> str:
        return template.format(org=self.org_id, project=self.project_id)

    def key(self, **kw: Any) -> httpx.Client:
        async def make() -> str:
            db = Database(self.database_url)
            try:
                return (await admin.create_key(db, self.org_name, "main", "k", "owner@example.com", **kw))[1]
            finally:
                await db.dispose()

        return token_client(self.server.url, str(_in_thread(make)))

    def enable(self, on: bool = True) -> dict[str, Any]:
        r = self.owner.patch(self.path(CONFIG), json={"reflection_enabled": on})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def run(self, user: str) -> dict[str, Any]:
        r = self.owner.post(self.path(RUNS), json={"user_id": user})
        assert r.status_code == 202, r.text
        return wait_event(self.owner, r.json()["event_id"])


@pytest.fixture
def org(llm_server: LiveServer, database_url: str, make_org: Callable[..., tuple[str, str, str]]) -> Iterator[Org]:
    o = Org(llm_server, database_url, make_org())
    yield o
    o.owner.close()


def wait_event(client: httpx.Client, event_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = client.get(f"/v1/event/{event_id}/").json()
        if event.get("status") in ("SUCCEEDED", "FAILED"):
            return dict(event)
        time.sleep(0.1)
    raise AssertionError(f"event {event_id} did not finish")


# ----------------------------------------------------------------------------------------------
# the setting
# ----------------------------------------------------------------------------------------------
def test_the_setting_is_served_where_the_platform_serves_it(org: Org) -> None:
    got = org.owner.get(org.path(CONFIG)).json()
    assert (got["reflection_enabled"], got["enabled_at"], got["supersede"], got["merge"]) == (False, None, True, True)
    assert got["synthesis"]["min_memories"] == 3
    assert org.owner.get(org.path("/api/v1/orgs/organizations/{org}/projects/{project}/")).json()["dream"] == {
        "reflection_enabled": False,
        "enabled_at": None,
    }
    on = org.enable()
    assert on["reflection_enabled"] is True
    assert on["enabled_at"] is not None
    project = org.owner.get(org.path("/api/v1/orgs/organizations/{org}/projects/{project}/")).json()
    assert project["dream"] == {"reflection_enabled": True, "enabled_at": on["enabled_at"]}
    # enabling again keeps the first boundary; other options are kept without effect, and said so
    r = org.owner.patch(org.path(CONFIG), json={"reflection_enabled": True, "reflection_mode": "deep"})
    assert r.status_code == 200, r.text
    assert r.json()["enabled_at"] == on["enabled_at"]
    assert r.json()["reflection_mode"] == "deep"
    assert r.json()["notes"] == [
        {"setting": "reflection_mode", "note": "kept; memserver has no such Dream option, so it has no effect"}
    ]
    assert org.owner.get(org.path(CONFIG)).json()["reflection_mode"] == "deep"
    assert_error(org.owner.patch(org.path(CONFIG), json={"reflection_enabled": "yes"}), 400, detail="true or false")
    assert org.enable(False)["reflection_enabled"] is False


def test_readers_and_bound_keys_cannot_change_the_setting_or_start_runs(org: Org) -> None:
    with org.key(role="READER") as reader, org.key(binding={"user_id": "alice"}) as bound:
        assert reader.get(org.path(CONFIG)).status_code == 200
        assert_error(reader.patch(org.path(CONFIG), json={"reflection_enabled": True}), 403, detail="OWNER")
        assert_error(reader.post(org.path(RUNS), json={"user_id": "alice"}), 403, detail="OWNER")
        for r in (
            bound.get(org.path(CONFIG)),
            bound.patch(org.path(CONFIG), json={"reflection_enabled": True}),
            bound.post(org.path(RUNS), json={"user_id": "alice"}),
        ):
            assert_error(r, 403, detail="bound")
    assert org.owner.get(org.path(CONFIG)).json()["reflection_enabled"] is False


def test_enabling_without_an_llm_is_refused_and_changes_nothing(
    live_server: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    org_id, project_id, key = make_org()
    path = CONFIG.format(org=org_id, project=project_id)
    with token_client(live_server, key) as owner:
        assert_error(owner.patch(path, json={"reflection_enabled": True}), 501, detail="MEMSERVER_LLM__BASE_URL")
        assert owner.get(path).json()["reflection_enabled"] is False


def test_a_run_on_request_needs_synthesis_on_and_a_user(org: Org) -> None:
    assert_error(org.owner.post(org.path(RUNS), json={"user_id": "alice"}), 400, detail="Synthesis is off")
    org.enable()
    assert_error(org.owner.post(org.path(RUNS), json={}), 400, detail="user_id is required")
    event = org.run("nobody")  # accepted; the run says why it did nothing
    assert event["status"] == "SUCCEEDED"
    assert event["metadata"]["skipped"] == "0 eligible memories; a run needs at least 3"


# ----------------------------------------------------------------------------------------------
# the scheduler of a running server, and the events feed
# ----------------------------------------------------------------------------------------------
def test_the_servers_scheduler_writes_patterns_that_the_events_feed_shows(org: Org, llm: FakeOpenAI) -> None:
    llm.chat_script = cafe
    org.enable()
    ids = add_verbatim(org.owner, *COFFEE, user_id="maya")
    deadline, event = time.monotonic() + 30, None
    while time.monotonic() < deadline and event is None:  # nobody asks: the scheduler (tick 0.3 s) queues the run
        listed = org.owner.get("/v1/events/").json()["results"]
        event = next((e for e in listed if e["event_type"] == "DREAM" and e["status"] == "SUCCEEDED"), None)
        time.sleep(0.2)
    assert event is not None, org.owner.get("/v1/events/").json()
    assert event["payload"] == {"user_id": "maya", "trigger": "schedule"}
    [result] = event["results"]
    assert (result["event"], result["data"]["memory"]) == ("ADD", "User often visits the corner cafe (3 visits).")
    assert sorted(result["sources"]) == sorted(ids)
    assert org.owner.get(f"/v1/event/{event['id']}/").json()["results"] == event["results"]
    pattern = org.owner.get(f"/v1/memories/{result['id']}/").json()
    assert (pattern["synthesized"], pattern["lifecycle_state"], pattern["user_id"]) == (True, "active", "maya")
    assert sorted(pattern["provenance"]["synthesis"]["sources"]) == sorted(ids)
    history = org.owner.get(f"/v1/memories/{result['id']}/history/").json()
    assert [(h["event"], h["new_memory"]) for h in history] == [("ADD", pattern["memory"])]
    with org.key(binding={"user_id": "maya"}) as bound:  # a bound key reads the events of its adds only
        assert bound.get(f"/v1/event/{event['id']}/").status_code == 404
    # what the run's LLM call cost counts in the project's usage, as every LLM-spending job's does
    assert event["metadata"]["llm_calls"] == 1
    assert event["metadata"]["prompt_tokens"] > 0
    usage = org.owner.get("/v1/memserver/usage/").json()
    assert usage["totals"]["llm_calls"] >= 1, usage


# ----------------------------------------------------------------------------------------------
# reads
# ----------------------------------------------------------------------------------------------
def _ids(body: Any) -> set[str]:
    items = body if isinstance(body, list) else body["results"]
    return {m["id"] for m in items}


def _reads(api: httpx.Client, user: str, flags: dict[str, bool]) -> dict[str, Any]:
    """Every generation's list and search of the user's memories, with these flags."""
    search = {"query": "corner cafe visits", "top_k": 50, "threshold": 0.0, **flags}
    q = {k: str(v).lower() for k, v in flags.items()}
    return {
        "v1 list": api.get("/v1/memories/", params={"user_id": user, **q}),
        "v2 list": api.post("/v2/memories/", json={"filters": {"user_id": user}, **flags}),
        "v3 list": api.post("/v3/memories/", json={"filters": {"user_id": user}, **flags}),
        "v1 search": api.post("/v1/memories/search/", json={**search, "user_id": user}),
        "v2 search": api.post("/v2/memories/search/", json={**search, "filters": {"user_id": user}}),
        "v3 search": api.post("/v3/memories/search/", json={**search, "filters": {"user_id": user}}),
    }


def _supersede(database_url: str, old: str, new: str) -> None:
    """What an inferred contradiction leaves: the old memory kept, replaced_by the new one."""

    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                await conn.execute(text("UPDATE memories SET replaced_by = :n WHERE id = :o"), {"n": new, "o": old})
        finally:
            await db.dispose()

    _in_thread(go)


def test_reads_follow_the_platforms_table_on_every_generation(org: Org, llm: FakeOpenAI, database_url: str) -> None:
    llm.chat_script = cafe
    org.enable()
    superseded, *current = add_verbatim(
        org.owner, "Visited the corner cafe once before it moved.", *COFFEE, user_id="noa"
    )
    _supersede(database_url, superseded, current[0])
    event = org.run("noa")
    pattern = event["results"][0]["id"]
    table = {  # read mode -> the memories it returns (Dream's table; memserver keeps no merged records)
        "default": {superseded, *current, pattern},
        "latest_only": {*current, pattern},
        "include_merged": {superseded, *current, pattern},
    }
    for mode, expected in table.items():
        flags = {} if mode == "default" else {mode: True}
        for read, r in _reads(org.owner, "noa", flags).items():
            assert r.status_code == 200, (mode, read, r.text)
            assert _ids(r.json()) == expected, (mode, read)
            by_id = {m["id"]: m for m in (r.json() if isinstance(r.json(), list) else r.json()["results"])}
            assert by_id[pattern]["synthesized"] is True
            assert {m["synthesized"] for i, m in by_id.items() if i != pattern} == {False}
            if superseded in by_id:
                assert by_id[superseded]["lifecycle_state"] == "superseded"


def test_patterns_are_never_shown_to_an_adds_reconciliation(org: Org, llm: FakeOpenAI) -> None:
    llm.chat_script = cafe
    org.enable()
    add_verbatim(org.owner, *COFFEE, user_id="omar")
    pattern = org.run("omar")["results"][0]["data"]["memory"]
    seen: list[str] = []

    def extract(body: dict[str, Any]) -> str:
        seen.append(prompt_of(body))
        return facts()

    llm.chat_script = extract
    r = org.owner.post(
        "/v1/memories/",
        json={
            "messages": [{"role": "user", "content": "I went to the corner cafe."}],
            "user_id": "omar",
            "async_mode": False,
        },
    )
    assert r.status_code == 200, r.text
    assert seen
    assert COFFEE[0] in seen[0]  # the user's own memories are shown
    assert pattern not in seen[0]


# ----------------------------------------------------------------------------------------------
# export and import
# ----------------------------------------------------------------------------------------------
def test_patterns_and_their_links_survive_export_and_import(org: Org, llm: FakeOpenAI) -> None:
    llm.chat_script = cafe
    org.enable()
    add_verbatim(org.owner, *COFFEE, user_id="pia")
    org.run("pia")
    dump = org.owner.get("/v1/memserver/export/").content
    created = org.owner.post(
        f"/api/v1/orgs/organizations/{org.org_id}/projects/", json={"name": f"copy-{uuid.uuid4().hex[:6]}"}
    )
    copy = created.json()["project_id"]
    r = org.owner.post("/v1/memserver/import/", params={"project_id": copy}, content=dump)
    assert r.status_code == 200, r.text
    listed = org.owner.post("/v3/memories/", json={"filters": {"user_id": "pia"}, "project_id": copy}).json()["results"]
    [pattern] = [m for m in listed if m["synthesized"]]
    assert sorted(pattern["provenance"]["synthesis"]["sources"]) == sorted(
        m["id"] for m in listed if not m["synthesized"]
    )
    config = org.owner.get(CONFIG.format(org=org.org_id, project=copy)).json()
    assert config["reflection_enabled"] is True  # restored, with a boundary after the imported memories
    # a Mem0 Platform dump: its synthesized memories stay patterns
    mem0 = [
        {"id": str(uuid.uuid4()), "memory": "User likes tea.", "user_id": "quin", "synthesized": False},
        {"id": str(uuid.uuid4()), "memory": "User drinks tea daily.", "user_id": "quin", "synthesized": True},
    ]
    fresh = org.owner.post(
        f"/api/v1/orgs/organizations/{org.org_id}/projects/", json={"name": f"m0-{uuid.uuid4().hex[:6]}"}
    )
    target = fresh.json()["project_id"]
    assert org.owner.post("/v1/memserver/import/", params={"project_id": target}, content=orjson.dumps(mem0)).is_success
    listed = org.owner.post("/v3/memories/", json={"filters": {"user_id": "quin"}, "project_id": target}).json()[
        "results"
    ]
    assert {m["memory"]: m["synthesized"] for m in listed} == {"User likes tea.": False, "User drinks tea daily.": True}
