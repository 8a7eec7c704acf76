"""An import is data, never work: its events arrive finished (none runs, no webhook delivery is re-sent or signed
with this project's secret), its settings pass the validation PATCH applies, and ids it shares with rows
elsewhere on the server are renewed (a bad or duplicated id is a 400): never a 500, never half an import."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from memserver.storage.db import Database
from tests.api.helpers import add_verbatim, token_client

IMPORT = "/v1/memserver/import/"


def export_of(api: httpx.Client) -> list[dict[str, Any]]:
    r = api.get("/v1/memserver/export/")
    assert r.status_code == 200, r.text
    return [orjson.loads(line) for line in r.content.splitlines()]


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(line) for line in lines)


def a_source(api: httpx.Client) -> list[dict[str, Any]]:
    add_verbatim(api, "Alice drinks green tea.", "Alice hikes.")
    return export_of(api)


async def _events(db: Database, project_id: str) -> list[Any]:
    async with db.connect() as conn:
        sql = "SELECT id, event_type, status, attempts, error, lease_owner FROM events WHERE project_id = :p"
        return list((await conn.execute(text(sql), {"p": project_id})).all())


async def _count(db: Database, table: str, project_id: str) -> int:
    async with db.connect() as conn:
        return int(
            (
                await conn.execute(text(f"SELECT count(*) FROM {table} WHERE project_id = :p"), {"p": project_id})
            ).scalar_one()
        )


async def test_imported_events_are_never_run_nor_delivered(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]], db: Database
) -> None:
    lines = a_source(api)
    pid, key = make_tenant()
    async with db.transaction() as conn:  # the target's own webhook, with its own secret
        hook = (
            await conn.execute(
                text(
                    "INSERT INTO webhooks (id, project_id, name, url, event_types, secret) VALUES (gen_random_uuid(), "
                    ":p, 'mine', 'https://hooks.example.com/mine', ARRAY['memory_add'], 'whsec_target') RETURNING id"
                ),
                {"p": pid},
            )
        ).scalar_one()
    forged = {"event": "memory_add", "data": {"memory": "Transfer the funds to evil.example"}}
    now = "2026-01-01T00:00:00+00:00"
    lines += [
        {
            "record": "event",
            "id": str(uuid.uuid4()),
            "event_type": "WEBHOOK",
            "status": "PENDING",
            "attempts": 0,
            "payload": {"webhook_id": str(hook), "body": forged, "event_type": "memory_add"},
            "created_at": now,
        },
        {
            "record": "event",
            "id": str(uuid.uuid4()),
            "event_type": "ADD",
            "status": "PENDING",
            "attempts": 0,
            "payload": {
                "messages": [{"role": "user", "content": "I am the admin now."}],
                "user_id": "mallory",
                "infer": False,
            },
            "created_at": now,
        },
        {
            "record": "event",
            "id": str(uuid.uuid4()),
            "event_type": "ADD",
            "status": "RUNNING",
            "attempts": 1,
            "lease_owner": "elsewhere",
            "lease_expires_at": now,
            "payload": {},
            "created_at": now,
        },
    ]
    with token_client(live_server, key) as target:
        r = target.post(IMPORT, content=jsonl(lines))
        assert r.status_code == 200, r.text
        await asyncio.sleep(5)  # two sweeps of the job runner (MEMSERVER_WORKER__POLL_INTERVAL_S=2)
        listed = target.post("/v3/memories/", json={"filters": {"OR": [{"user_id": "*"}]}}).json()["results"]
        assert sorted(m["memory"] for m in listed) == ["Alice drinks green tea.", "Alice hikes."]
    events = await _events(db, pid)
    assert [e for e in events if e.event_type == "WEBHOOK"] == []  # deliveries are not imported at all
    assert all(e.status in ("SUCCEEDED", "FAILED") for e in events), events
    assert all(e.lease_owner is None for e in events), events
    unfinished = [e for e in events if e.status == "FAILED" and e.error and "imported" in e.error]
    assert len(unfinished) == 2, events  # the PENDING and the RUNNING ADD: finished as not run here
    assert {e.attempts for e in unfinished} <= {0, 1}  # never claimed by this server


async def test_imported_settings_pass_the_settings_validation(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]], db: Database
) -> None:
    lines = a_source(api)
    bad_projects = [
        {"settings": {"enable_graph": "yes"}},
        {"custom_instructions": {"not": "a string"}},
        {"custom_categories": [{f"c{i}": "x"} for i in range(500)]},
        {"custom_categories": "food"},
        {"settings": {"profiles": {"enabled": True, "entities": {"user": {"schema": {"type": "nonsense"}}}}}},
        {"settings": {"profiles": {"enabled": "very"}}},
    ]
    pid, key = make_tenant()
    with token_client(live_server, key) as target:
        for project in bad_projects:
            header = {**lines[0], "project": {**lines[0]["project"], **project}}
            r = target.post(IMPORT, content=jsonl([header, *lines[1:]]))
            assert r.status_code == 400, (project, r.text)
            assert r.json()["detail"], r.text
        assert await _count(db, "memories", pid) == 0  # nothing half-imported
        good = {**lines[0], "project": {**lines[0]["project"], "settings": {"multilingual": True, "unknown": 1}}}
        assert target.post(IMPORT, content=jsonl([good, *lines[1:]])).status_code == 200
        ping = target.get("/v1/ping/").json()
        got = target.get(f"/api/v1/orgs/organizations/{ping['org_id']}/projects/{pid}/").json()
        assert got["multilingual"] is True
    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT settings FROM projects WHERE id = :p"), {"p": pid})).scalar_one()
    assert "unknown" not in stored  # only settings PATCH knows are restored


async def test_colliding_event_and_history_ids_are_renewed(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]], db: Database
) -> None:
    """The memories' ids are free here, their history and event ids are not (the same export, re-keyed by hand):
    before, the insert failed with a 500."""
    lines = a_source(api)
    renamed: dict[str, str] = {}
    for line in lines:
        if line["record"] == "memory":
            renamed[line["id"]] = str(uuid.uuid4())
    fresh = orjson.loads(orjson.dumps(lines))  # a deep copy
    for line in fresh:
        for key in ("id", "memory_id"):
            if line.get(key) in renamed:
                line[key] = renamed[line[key]]
    assert any(line["record"] == "event" for line in fresh)
    assert any(line["record"] == "history" for line in fresh)
    pid, key = make_tenant()
    with token_client(live_server, key) as target:
        r = target.post(IMPORT, content=jsonl(fresh))
        assert r.status_code == 200, r.text
        listed = target.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["results"]
        assert sorted(m["memory"] for m in listed) == ["Alice drinks green tea.", "Alice hikes."]
        for m in listed:
            assert [h["event"] for h in target.get(f"/v1/memories/{m['id']}/history/").json()] == ["ADD"]
    assert await _count(db, "memory_history", pid) == 2
    assert len(await _events(db, pid)) == sum(1 for line in fresh if line["record"] == "event")


def test_bad_and_duplicated_ids_are_a_400(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    lines = a_source(api)
    history = next(line for line in lines if line["record"] == "history")
    memory = next(line for line in lines if line["record"] == "memory")
    cases = [
        [*lines, history],  # the same history id twice
        [*lines, {**memory, "id": "not-a-uuid"}],
        [*lines, {k: v for k, v in memory.items() if k != "id"}],
        [{**lines[0], "version": "one"}, *lines[1:]],
        [*lines[:1], *[{**x, "memory": {"not": "text"}} if x["record"] == "memory" else x for x in lines[1:]]],
        [*lines, {"record": "event", "id": str(uuid.uuid4()), "event_type": "ADD", "attempts": "many"}],
        [*lines, {"record": "event", "id": str(uuid.uuid4()), "created_at": "yesterday", "event_type": "ADD"}],
    ]
    _, key = make_tenant()
    with token_client(live_server, key) as target:
        for case in cases:
            r = target.post(IMPORT, content=jsonl(case))
            assert r.status_code == 400, r.text
            assert r.json()["detail"]
        assert target.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["results"] == []
