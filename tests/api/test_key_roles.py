"""A key's role is its own cap on its member's (`memserver keys create --role READER` makes a read-only key and
changes no member), and an organisation never loses its last OWNER: not through the CLI, not through the API,
and not when two demotions race (a real trigger holds the first one open while the second runs)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy import text

from memserver.errors import BadRequest
from memserver.services import admin
from memserver.storage.db import Database
from tests.api.helpers import async_token_client, verbatim_add_body
from tests.unit.test_cli import cli

ORGS = "/api/v1/orgs/organizations"


async def _members(db: Database, org_id: str) -> dict[str, str]:
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT email, role FROM members WHERE org_id = :o"), {"o": org_id})).all()
    return {r.email: r.role for r in rows}


async def test_keys_create_role_reader_makes_a_reader_key_and_touches_no_member(
    database_url: str, live_server: str, db: Database
) -> None:
    """With the default email, the org's only OWNER: before, `--role READER` gave an OWNER key (scope project)
    or demoted the last OWNER (scope org)."""
    org = f"keyroles-{time.time_ns()}"
    assert cli(database_url, "orgs", "create", org, "--owner", admin.DEFAULT_EMAIL).returncode == 0
    assert cli(database_url, "projects", "create", "p", "--org", org).returncode == 0
    keys = {}
    for scope in ("project", "org"):
        made = cli(database_url, "keys", "create", "--org", org, "--project", "p", "--role", "READER", "--scope", scope)
        assert made.returncode == 0, made.stderr
        assert "READER" in made.stdout  # the CLI says what the key may do
        keys[scope] = made.stdout.strip().splitlines()[-1]
    plain = cli(database_url, "keys", "create", "--org", org, "--project", "p").stdout.strip().splitlines()[-1]
    async with async_token_client(live_server, plain) as owner:
        org_id = (await owner.get("/v1/ping/")).json()["org_id"]
        assert (await owner.post("/v3/memories/add/", json=verbatim_add_body("Alice likes tea."))).status_code == 200
    assert await _members(db, org_id) == {admin.DEFAULT_EMAIL: "OWNER"}
    for scope, key in keys.items():
        async with async_token_client(live_server, key) as reader:
            assert (await reader.get("/v1/ping/")).status_code == 200, scope
            listed = await reader.post("/v3/memories/", json={"filters": {"user_id": "alice"}})
            assert [m["memory"] for m in listed.json()["results"]] == ["Alice likes tea."], scope
            refused = await reader.post("/v3/memories/add/", json=verbatim_add_body("Alice likes coffee."))
            assert refused.status_code == 403, (scope, refused.text)
            project = (await reader.get("/v1/ping/")).json()["project_id"]
            settings = await reader.patch(f"{ORGS}/{org_id}/projects/{project}/", json={"multilingual": True})
            assert settings.status_code == 403, scope
            org_view = (await reader.get(f"{ORGS}/{org_id}/")).json()
            assert org_view["user_role"] == "READER", scope  # the key's view of itself: capped
    assert "role=READER" in cli(database_url, "keys", "list").stdout
    assert await _members(db, org_id) == {admin.DEFAULT_EMAIL: "OWNER"}  # still the org's OWNER


async def test_a_key_for_a_member_without_a_role_in_its_project_is_refused_clearly(db: Database) -> None:
    org = f"keyroles-none-{time.time_ns()}"
    await admin.create_org(db, org, owner_email="boss@example.com")
    await admin.create_project(db, org, "a")
    await admin.create_project(db, org, "b")
    await admin.add_member(db, org, "ann@example.com", "READER", "a")
    with pytest.raises(BadRequest, match="no role in this project"):
        await admin.create_key(db, org, "b", "k", "ann@example.com")
    assert {m.email: m.role for m in await admin.list_members(db, org, "b")} == {"boss@example.com": "OWNER"}


async def test_the_last_owner_is_never_demoted_or_removed(
    database_url: str, live_server: str, db: Database, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    org_id, _, key = make_org()
    async with db.connect() as conn:
        org = (await conn.execute(text("SELECT name FROM orgs WHERE id = :o"), {"o": org_id})).scalar_one()
    for args in (("set-role", "owner@example.com", "--role", "READER"), ("remove", "owner@example.com")):
        res = cli(database_url, "members", *args, "--org", org)
        assert res.returncode != 0, args
        assert "last OWNER" in res.stderr, (args, res.stderr)
    async with async_token_client(live_server, key) as owner:
        member = {"email": "owner@example.com", "role": "READER"}
        demoted = await owner.put(f"{ORGS}/{org_id}/members/", json=member)
        removed = await owner.request("DELETE", f"{ORGS}/{org_id}/members/", json={"email": "owner@example.com"})
        for r in (demoted, removed):
            assert r.status_code == 400, r.text
            assert "last OWNER" in r.json()["detail"], r.text
    assert await _members(db, org_id) == {"owner@example.com": "OWNER"}


# -- two demotions at once ------------------------------------------------------------------------
@pytest.fixture
async def slow_member_updates(db: Database) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    """A real trigger that holds every update of one org's members for 1 s: the first demotion's transaction
    is still open while the second one checks how many OWNERs are left."""
    name = f"slow_members_{uuid.uuid4().hex[:8]}"
    async with db.transaction() as conn:
        await conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
    made: list[str] = []

    async def slow(org_id: str) -> None:
        uuid.UUID(org_id)  # a literal in the trigger's WHEN: only a UUID goes in
        async with db.transaction() as conn:
            await conn.execute(
                text(
                    f"CREATE TRIGGER {name}_{len(made)} BEFORE UPDATE OR DELETE ON members FOR EACH ROW "
                    f"WHEN (OLD.org_id = '{org_id}') EXECUTE FUNCTION {name}()"
                )
            )
        made.append(f"{name}_{len(made)}")

    yield slow
    async with db.transaction() as conn:
        for trigger in made:
            await conn.execute(text(f"DROP TRIGGER {trigger} ON members"))
        await conn.execute(text(f"DROP FUNCTION {name}()"))


async def test_two_concurrent_demotions_over_http_leave_one_owner(
    live_server: str,
    db: Database,
    make_org: Callable[..., tuple[str, str, str]],
    slow_member_updates: Callable[[str], Awaitable[None]],
) -> None:
    org_id, _, key = make_org()
    async with async_token_client(live_server, key) as owner:
        r = await owner.post(f"{ORGS}/{org_id}/members/", json={"email": "second@example.com", "role": "OWNER"})
        assert r.status_code == 201, r.text
        await slow_member_updates(org_id)
        demote = [
            owner.put(f"{ORGS}/{org_id}/members/", json={"email": email, "role": "READER"})
            for email in ("owner@example.com", "second@example.com")
        ]
        answers = sorted(r.status_code for r in await asyncio.gather(*demote))
    assert answers == [200, 400], answers
    assert sorted((await _members(db, org_id)).values()) == ["OWNER", "READER"]


async def test_two_concurrent_operator_demotions_leave_one_owner(
    db: Database, slow_member_updates: Callable[[str], Awaitable[None]]
) -> None:
    org = f"race-{time.time_ns()}"
    org_id = str(await admin.create_org(db, org, owner_email="a@example.com"))
    await admin.add_member(db, org, "b@example.com", "OWNER")
    await slow_member_updates(org_id)
    results = await asyncio.gather(
        admin.add_member(db, org, "a@example.com", "READER"),
        admin.remove_member(db, org, "b@example.com"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, BadRequest) for r in results) == 1, results
    assert list((await _members(db, org_id)).values()).count("OWNER") == 1


def test_org_listing_shows_only_the_callers_org(
    live_server: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    """The same email in two orgs is two members of two tenants: each key lists its own org only."""
    mine, _, my_key = make_org("same@example.com")
    theirs, _, their_key = make_org("same@example.com")
    for org_id, key in ((mine, my_key), (theirs, their_key)):
        listed = httpx.get(f"{live_server}{ORGS}/", headers={"Authorization": f"Token {key}"}).json()
        assert [o["org_id"] for o in listed] == [org_id]
