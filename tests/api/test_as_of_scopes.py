"""`as_of` with scopes: entity ids and filters select among the memories *as they stood* (their text, entity ids
and metadata then), keys see only the past they may see today (a key bound to a user, a read-only key, another
project's key), and the official Python SDK passes `as_of` through (`get_all`/`search` forward extra keyword
arguments into the v3 body), and so does the TypeScript SDK (`asOf`).

The story (one project): Maya's travel agent holds "Lisbon" (trip lisbon) and "Porto" (trip porto), her chef
agent "risotto", Sam's travel agent "Sam flies to Lisbon". At `t` that is the state; afterwards Lisbon becomes
Madrid (trip madrid), Porto is deleted, and a Lisbon car rental is added.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text as sa_text

from memserver.services import admin
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim, assert_error, token_client
from tests.sdk import envs

LISBON, MADRID = "Maya flies to Lisbon", "Maya flies to Madrid"
PORTO = "Maya books a hotel in Porto"
RISOTTO = "Maya cooks risotto"
SAM = "Sam flies to Lisbon"
CAR = "Maya rents a car in Lisbon"


def instant() -> str:
    """Now, strictly between the write that just answered and the next one."""
    time.sleep(0.05)
    t = datetime.now(UTC)
    time.sleep(0.05)
    return t.isoformat()


@dataclass
class Story:
    key: str
    t: str
    ids: dict[str, str]


@pytest.fixture(scope="module")
def story(live_server: str, make_tenant: Callable[[], tuple[str, str]]) -> Story:
    key = make_tenant()[1]
    with token_client(live_server, key) as api:
        [lisbon] = add_verbatim(api, LISBON, user_id="maya", agent_id="travel", metadata={"trip": "lisbon"})
        [porto] = add_verbatim(api, PORTO, user_id="maya", agent_id="travel", metadata={"trip": "porto"})
        add_verbatim(api, RISOTTO, user_id="maya", agent_id="chef")
        add_verbatim(api, SAM, user_id="sam", agent_id="travel", metadata={"trip": "lisbon"})
        t = instant()
        r = api.put(f"/v1/memories/{lisbon}/", json={"text": MADRID, "metadata": {"trip": "madrid"}})
        assert r.status_code == 200, r.text
        assert api.delete(f"/v1/memories/{porto}/").status_code == 200
        add_verbatim(api, CAR, user_id="maya", agent_id="travel", metadata={"trip": "lisbon"})
    return Story(key=key, t=t, ids={"lisbon": lisbon, "porto": porto})


@pytest.fixture
def api(live_server: str, story: Story) -> Iterator[httpx.Client]:
    with token_client(live_server, story.key) as client:
        yield client


def texts(r: httpx.Response) -> set[str]:
    assert r.status_code == 200, r.text
    out = r.json()
    items = out["results"] if isinstance(out, dict) else out
    found = [m["memory"] for m in items]
    assert len(found) == len(set(found)), found
    return set(found)


def listed(api: httpx.Client, route: str, filters: dict[str, Any], as_of: str | None) -> set[str]:
    extra = {"as_of": as_of} if as_of else {}
    if route == "v1":  # entity ids as query parameters
        return texts(api.get("/v1/memories/", params={**filters, **extra}))
    return texts(api.post(f"/{route}/memories/", json={"filters": filters, **extra}))


def searched(
    api: httpx.Client, route: str, filters: dict[str, Any], as_of: str | None, query: str = "Maya"
) -> set[str]:
    body: dict[str, Any] = {"query": query, "top_k": 50, "threshold": 0, **({"as_of": as_of} if as_of else {})}
    if route == "v1":  # entity ids at the top level, as v1 clients send them
        return texts(api.post("/v1/memories/search/", json={**body, **filters}))
    return texts(api.post(f"/{route}/memories/search/", json={**body, "filters": filters}))


# ----------------------------------------------------------------------------------------------
# entity ids and filters select among the memories as they stood
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["v1", "v2", "v3"])
def test_entity_ids_select_among_the_memories_of_that_moment(api: httpx.Client, story: Story, route: str) -> None:
    maya_travel = {"user_id": "maya", "agent_id": "travel"}
    assert listed(api, route, maya_travel, story.t) == {LISBON, PORTO}
    assert listed(api, route, maya_travel, None) == {MADRID, CAR}
    assert searched(api, route, maya_travel, story.t) == {LISBON, PORTO}
    assert searched(api, route, maya_travel, None) == {MADRID, CAR}
    assert listed(api, route, {"user_id": "maya"}, story.t) == {LISBON, PORTO, RISOTTO}
    assert searched(api, route, {"user_id": "sam"}, story.t) == {SAM}


@pytest.mark.parametrize("route", ["v2", "v3"])
def test_filters_read_the_metadata_and_text_of_that_moment(api: httpx.Client, story: Story, route: str) -> None:
    lisbon_trip = {"AND": [{"user_id": "maya"}, {"metadata": {"trip": "lisbon"}}]}
    assert listed(api, route, lisbon_trip, story.t) == {LISBON}  # its metadata then; the car came later
    assert listed(api, route, lisbon_trip, None) == {CAR}
    assert searched(api, route, lisbon_trip, story.t) == {LISBON}
    porto_trip = {"AND": [{"user_id": "maya"}, {"metadata": {"trip": "porto"}}]}
    assert searched(api, route, porto_trip, story.t) == {PORTO}  # deleted later: present then
    assert searched(api, route, porto_trip, None) == set()
    either = {"OR": [{"agent_id": "chef"}, {"AND": [{"user_id": "sam"}, {"agent_id": "travel"}]}]}
    assert listed(api, route, either, story.t) == {RISOTTO, SAM}
    everyone_lisbon = {"AND": [{"user_id": "*"}, {"keywords": {"icontains": "lisbon"}}]}
    assert listed(api, route, everyone_lisbon, story.t) == {LISBON, SAM}
    assert listed(api, route, everyone_lisbon, None) == {SAM, CAR}


def test_as_of_in_the_future_is_now_on_every_route(api: httpx.Client, story: Story) -> None:
    later = "2999-01-01T00:00:00Z"
    maya_travel = {"user_id": "maya", "agent_id": "travel"}
    for route in ("v1", "v2", "v3"):
        assert listed(api, route, maya_travel, later) == {MADRID, CAR}, route
        assert searched(api, route, maya_travel, later) == {MADRID, CAR}, route
    got = api.get(f"/v1/memories/{story.ids['lisbon']}/", params={"as_of": later})
    assert got.status_code == 200, got.text
    assert got.json()["memory"] == MADRID
    assert_error(api.get(f"/v1/memories/{story.ids['porto']}/", params={"as_of": later}), 404)


# ----------------------------------------------------------------------------------------------
# keys see only the past they may see today
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", [None, "READER"])
def test_a_bound_key_sees_only_its_users_past(live_server: str, database_url: str, role: str | None) -> None:
    async def keys() -> tuple[str, str]:
        org = f"asof-{uuid.uuid4().hex[:8]}"
        db = Database(database_url)
        try:
            await admin.create_org(db, org)
            await admin.create_project(db, org, "p")
            _, owner = await admin.create_key(db, org, "p", "owner", "owner@example.com")
            _, alice = await admin.create_key(
                db, org, "p", "alice", "owner@example.com", role=role, binding={"user_id": "alice"}
            )
            return owner, alice
        finally:
            await db.dispose()

    owner, alice_key = asyncio.run(keys())
    with token_client(live_server, owner) as api:
        [tea, flat] = add_verbatim(api, "Alice likes tea", "Alice rents a flat in Leeds", user_id="alice")
        [bob] = add_verbatim(api, "Bob's PIN is 4321", user_id="bob")
        [shared] = add_verbatim(api, "Bob and Alice share a flat", user_id="bob", agent_id="helper")
        t = instant()
        for mid, text in ((bob, "Bob's PIN is 9999"), (tea, "Alice likes coffee")):
            assert api.put(f"/v1/memories/{mid}/", json={"text": text}).status_code == 200
        for mid in (shared, flat):
            assert api.delete(f"/v1/memories/{mid}/").status_code == 200
    then = {"Alice likes tea", "Alice rents a flat in Leeds"}
    with token_client(live_server, alice_key) as api:
        for route in ("v1", "v2", "v3"):
            assert listed(api, route, {"user_id": "alice"}, t) == then, route
            assert searched(api, route, {"user_id": "alice"}, t, "PIN flat Bob Alice") == then, route
        assert listed(api, "v3", {"user_id": "alice"}, None) == {"Alice likes coffee"}
        assert_error(api.post("/v3/memories/", json={"filters": {"user_id": "bob"}, "as_of": t}), 403)
        assert_error(api.post("/v3/memories/", json={"filters": {"user_id": "*"}, "as_of": t}), 403)
        for mid in (bob, shared):
            assert_error(api.get(f"/v1/memories/{mid}/", params={"as_of": t}), 404, error="Memory not found!")
        assert api.get(f"/v1/memories/{tea}/", params={"as_of": t}).json()["memory"] == "Alice likes tea"
        assert api.get(f"/v1/memories/{flat}/", params={"as_of": t}).json()["memory"] == "Alice rents a flat in Leeds"
        if role == "READER":  # reading the past gives no right to change the present
            assert_error(api.put(f"/v1/memories/{tea}/", json={"text": "Alice likes tea"}), 403)


def test_a_read_only_key_sees_its_projects_past_and_no_other_projects(live_server: str, database_url: str) -> None:
    async def keys() -> tuple[str, str, str]:
        org = f"asof-{uuid.uuid4().hex[:8]}"
        db = Database(database_url)
        try:
            await admin.create_org(db, org)
            await admin.create_project(db, org, "p")
            await admin.create_project(db, org, "q")
            _, owner = await admin.create_key(db, org, "p", "owner", "owner@example.com")
            _, reader = await admin.create_key(db, org, "p", "reader", "owner@example.com", role="READER")
            _, other = await admin.create_key(db, org, "q", "other", "other@example.com")
            return owner, reader, other
        finally:
            await db.dispose()

    owner, reader, other = asyncio.run(keys())
    with token_client(live_server, owner) as api:
        [kept, gone] = add_verbatim(api, "Nora plays the cello", "Nora's door code is 1234", user_id="nora")
        t = instant()
        assert api.delete(f"/v1/memories/{gone}/").status_code == 200
        assert api.put(f"/v1/memories/{kept}/", json={"text": "Nora plays the viola"}).status_code == 200
    with token_client(live_server, reader) as api:
        for route in ("v1", "v2", "v3"):
            assert listed(api, route, {"user_id": "nora"}, t) == {"Nora plays the cello", "Nora's door code is 1234"}
            assert searched(api, route, {"user_id": "nora"}, t, "Nora") == {
                "Nora plays the cello",
                "Nora's door code is 1234",
            }
        assert api.get(f"/v1/memories/{gone}/", params={"as_of": t}).json()["memory"] == "Nora's door code is 1234"
    with token_client(live_server, other) as api:  # the same user id in another project: none of p's past
        for route in ("v1", "v2", "v3"):
            assert listed(api, route, {"user_id": "nora"}, t) == set(), route
            assert searched(api, route, {"user_id": "nora"}, t, "Nora") == set(), route
        for mid in (kept, gone):
            assert_error(api.get(f"/v1/memories/{mid}/", params={"as_of": t}), 404)


# ----------------------------------------------------------------------------------------------
# the official Python SDK (2.x forwards extra keyword arguments of get_all and search into the v3 body)
# ----------------------------------------------------------------------------------------------
SDK_SCRIPT = """
import json, os, sys
from mem0 import MemoryClient
c = MemoryClient(api_key=os.environ["MEMSERVER_KEY"], host=os.environ["MEMSERVER_URL"])
as_of = json.loads(sys.argv[1])
kw = {"as_of": as_of} if as_of is not None else {}
flt = {"AND": [{"user_id": "maya"}, {"agent_id": "travel"}]}
out = {
    "get_all": c.get_all(filters=flt, **kw),
    "search": c.search("Where does Maya travel?", filters=flt, top_k=20, threshold=0, **kw),
}
try:
    c.get_all(filters=flt, as_of="yesterday")
    out["invalid"] = None
except Exception as exc:
    out["invalid"] = type(exc).__name__ + ": " + str(exc)
print("RESULT " + json.dumps(out))
"""


@pytest.mark.sdk
def test_the_python_sdk_passes_as_of_through(live_server: str, story: Story, tmp_path: Path) -> None:
    def run(as_of: Any) -> dict[str, Any]:
        script = tmp_path / "sdk_as_of.py"
        script.write_text(SDK_SCRIPT)
        proc = subprocess.run(
            [str(envs.python_sdk(envs.PYTHON_SDK_VERSIONS["current"])), str(script), json.dumps(as_of)],
            env=envs.scenario_env(live_server, story.key, tmp_path / "mem0-home"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        return dict(json.loads(line[7:]))

    def found(out: dict[str, Any], call: str) -> set[str]:
        return {m["memory"] for m in out[call]["results"]}

    then = run(story.t)
    assert found(then, "get_all") == found(then, "search") == {LISBON, PORTO}
    assert then["get_all"]["count"] == 2
    now = run(None)
    assert found(now, "get_all") == found(now, "search") == {MADRID, CAR}
    assert "as_of" in (then["invalid"] or "")  # the 400's detail reaches the SDK user
    unix = run(datetime.fromisoformat(story.t).timestamp())  # unix seconds, as the SDK user may pass them
    assert found(unix, "get_all") == {LISBON, PORTO}


# ----------------------------------------------------------------------------------------------
# decay: a search of the past is not weighed by today's clock, and is no read of today's memories
# ----------------------------------------------------------------------------------------------
def test_a_search_of_the_past_applies_no_decay_and_records_no_reads(
    live_server: str, make_tenant: Callable[[], tuple[str, str]], database_url: str
) -> None:
    project, key = make_tenant()

    async def reads() -> int:
        db = Database(database_url)
        try:
            async with db.connect() as conn:
                q = "SELECT coalesce(sum(read_count), 0) FROM memory_reads WHERE project_id = :p"
                return int((await conn.execute(sa_text(q), {"p": uuid.UUID(project)})).scalar_one())
        finally:
            await db.dispose()

    def search(api: httpx.Client, as_of: str | None) -> list[dict[str, Any]]:
        body = {"query": "Alice enjoys green tea.", "filters": {"user_id": "alice"}, "threshold": 0}
        r = api.post("/v3/memories/search/", json={**body, **({"as_of": as_of} if as_of else {})})
        assert r.status_code == 200, r.text
        return list(r.json()["results"])

    with token_client(live_server, key) as api:
        two_years_ago = int(time.time()) - 2 * 365 * 86400
        [old] = add_verbatim(api, "Alice enjoys green tea.", timestamp=two_years_ago, user_id="alice")
        [new] = add_verbatim(api, "Alice sometimes drinks green tea with friends.", user_id="alice")
        t = instant()
        ping = api.get("/v1/ping/").json()
        path = f"/api/v1/orgs/organizations/{ping['org_id']}/projects/{ping['project_id']}/"
        assert api.patch(path, json={"decay": True}).is_success
        for _ in range(3):
            then = search(api, t)
            assert [h["id"] for h in then] == [old, new]  # the closer text wins: no recency weighting
            assert all("decay" not in h["score_breakdown"] for h in then)
        assert asyncio.run(reads()) == 0
        now = search(api, None)
        assert [h["id"] for h in now] == [new, old]  # today's search is weighed, and counts as a read
        assert asyncio.run(reads()) == 2


# the official TypeScript SDK 3.x spreads unknown options into the v3 body, camelCase to snake_case: asOf -> as_of
TS_SCRIPT = """
import { MemoryClient } from "mem0ai";
const client = new MemoryClient({ apiKey: process.env.MEMSERVER_KEY, host: process.env.MEMSERVER_URL });
const asOf = JSON.parse(process.argv[2]);
const opts = asOf === null ? {} : { asOf };
const filters = { AND: [{ user_id: "maya" }, { agent_id: "travel" }] };
const out = {
  get_all: await client.getAll({ filters, ...opts }),
  search: await client.search("Where does Maya travel?", { filters, topK: 20, threshold: 0, ...opts }),
};
try {
  await client.getAll({ filters, asOf: "yesterday" });
  out.invalid = null;
} catch (e) {
  out.invalid = String(e && e.message);
}
console.log("RESULT " + JSON.stringify(out));
"""


@pytest.mark.sdk
def test_the_typescript_sdk_passes_as_of_through(live_server: str, story: Story, tmp_path: Path) -> None:
    (tmp_path / "node_modules").symlink_to(envs.node_sdk() / "node_modules", target_is_directory=True)
    script = tmp_path / "as_of.mjs"
    script.write_text(TS_SCRIPT)

    def run(as_of: Any) -> dict[str, Any]:
        proc = subprocess.run(
            [shutil.which("node") or "node", str(script), json.dumps(as_of)],
            cwd=tmp_path,
            env=envs.scenario_env(live_server, story.key, tmp_path / "mem0-home"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        return dict(json.loads(line[7:]))

    def found(out: dict[str, Any], call: str) -> set[str]:
        got = out[call]
        return {m["memory"] for m in (got["results"] if isinstance(got, dict) else got)}

    then = run(story.t)
    assert found(then, "get_all") == found(then, "search") == {LISBON, PORTO}
    now = run(None)
    assert found(now, "get_all") == found(now, "search") == {MADRID, CAR}
    assert "as_of" in (then["invalid"] or "")
    millis = int(datetime.fromisoformat(story.t).timestamp() * 1000)  # a JavaScript Date.now() / getTime()
    assert found(run(millis), "get_all") == {LISBON, PORTO}
