"""Which role each route needs is declared where the route is defined (`api.deps`: `ReaderDep`, `OwnerDep`,
`OrgOwnerDep`, `PUBLIC`), published as `x-memserver-role` on each operation of /openapi.json, and proven here by
one table: every route that is not a read, called with a READER key, answers 403 and changes nothing.

A route without a declaration fails `test_every_route_declares_its_role`; a non-GET route declared READER fails
it too unless it is listed in READS below (reads by nature: search and list POSTs).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import SecretStr
from sqlalchemy import text

from memserver.api import deps
from memserver.api.deps import PrincipalDep
from memserver.config import Settings
from memserver.main import create_app
from memserver.services import admin
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim, token_client

ROLE_KEY = "x-memserver-role"
ROLES = {"PUBLIC", "READER", "OWNER", "ORG_OWNER"}
REFUSING = {"OWNER", "ORG_OWNER"}  # roles a READER key does not have
ALICE = {"user_id": "alice"}

# Non-GET routes that are reads by nature: a READER may call them, and they change no memory, setting, member
# or job (an export is a job: OWNER).
# The body is what the table sends with a READER key (it must not be refused for its role).
READS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/memories/search"): {"query": "tea", **ALICE},
    ("POST", "/v2/memories/search"): {"query": "tea", "filters": ALICE},
    ("POST", "/v3/memories/search"): {"query": "tea", "filters": ALICE},
    ("POST", "/v2/memories"): {"filters": ALICE},
    ("POST", "/v3/memories"): {"filters": ALICE},
    ("POST", "/v1/exports/get"): {"filters": ALICE},
    ("POST", "/v1/summary"): {"filters": ALICE},
}
# Bodies that make a READER-ok route a write: still refused (the service checks what only it knows).
WRITES_THROUGH_READS = [
    ("POST", "/v3/memories", {"messages": [{"role": "user", "content": "I like tea."}], **ALICE, "infer": False}),
]
# Routes outside the REST API: FastAPI's own documents, the console's static files, and /mcp, whose tool calls
# are in-process requests to the routes below with the caller's own key (so these declarations apply to them).
NOT_API = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/console", "/console/{path}", "/mcp"}


# -- reading the declarations ---------------------------------------------------------------------
def _app() -> FastAPI:
    url = SecretStr("postgresql://nobody@127.0.0.1:1/none")  # never connected to: the routes are only read
    return create_app(Settings(database_url=url))


def declared(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """(method, path) -> the role its route declares (None: none); fails on a non-API route not in NOT_API."""
    out: dict[tuple[str, str], str | None] = {}
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        path = str(ctx.path_format or ctx.path)
        if not isinstance(route, APIRoute):
            assert path in NOT_API, f"{path}: a route outside the API must be listed in NOT_API with its reason"
            continue
        role = deps.route_role(route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out[(method, path)] = None if role is None else str(role)
    return out


def problems(app: FastAPI) -> list[str]:
    """Routes without a declared role, and non-GET routes declared READER that are not reads by nature."""
    found = []
    for (method, path), role in sorted(declared(app).items()):
        if role not in ROLES:
            found.append(f"{method} {path}: no role declared (use ReaderDep, OwnerDep, OrgOwnerDep or PUBLIC)")
        elif method != "GET" and role in ("READER", "PUBLIC") and (method, path) not in READS:
            found.append(f"{method} {path}: a write declared {role} (declare OwnerDep, or list it in READS)")
    return found


def test_every_route_declares_its_role(live_server: str) -> None:
    app = _app()
    assert problems(app) == []
    table = declared(app)
    for key in READS:
        assert table.get(key) == "READER", f"{key} is listed as a read but declared {table.get(key)}"
    # /openapi.json says the same, operation by operation
    spec = httpx.get(f"{live_server}/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get(ROLE_KEY) == table[(method.upper(), path)], (method, path, op.get(ROLE_KEY))


def test_a_route_without_a_declared_role_fails_the_check() -> None:
    app = _app()

    @app.post("/v1/brand-new-write")
    async def brand_new(principal: PrincipalDep) -> dict[str, str]:  # authenticated, but no role declared
        return {}

    @app.delete("/v1/another-write")
    async def another(principal: deps.ReaderDep) -> dict[str, str]:  # a write declared READER
        return {}

    assert problems(app) == [
        "DELETE /v1/another-write: a write declared READER (declare OwnerDep, or list it in READS)",
        "POST /v1/brand-new-write: no role declared (use ReaderDep, OwnerDep, OrgOwnerDep or PUBLIC)",
    ]


# -- READER keys against every write --------------------------------------------------------------
class Project:
    """An org with project `main`, its OWNER's org-scoped key, data of every kind, and two READER keys."""

    def __init__(self, live_server: str, database_url: str, ids: tuple[str, str, str]):
        self.org_id, self.project_id, owner_key = ids
        self.live_server, self.database_url = live_server, database_url
        self.owner = token_client(live_server, owner_key)
        self.org_name = self.owner.get(f"/api/v1/orgs/organizations/{self.org_id}/").json()["name"]
        self.memory_id = add_verbatim(self.owner, "Alice drinks green tea.")[0]
        assert self.owner.post("/v1/feedback/", json={"memory_id": self.memory_id, "feedback": "POSITIVE"}).is_success
        assert self.owner.post("/v1/users/", json={"user_id": "bob"}).status_code == 201
        r = self.owner.post("/v2/profiles/settings/", json={"enabled": True})
        assert r.status_code < 500, r.text
        self.event_id = str(
            self.owner.get("/v1/events/").json()["results"][0]["id"]
            if self.owner.get("/v1/events/").json().get("results")
            else uuid.uuid4()
        )
        self.webhook_id, self.node_id = self._run(self._rows_without_http)
        # READER keys: a member who is READER (org-scoped key), and the OWNER's own key capped to READER
        members = f"/api/v1/orgs/organizations/{self.org_id}/projects/{self.project_id}/members/"
        assert self.owner.post(members, json={"email": "reader@example.com", "role": "READER"}).is_success
        self.readers = {
            "reader member": self.key("reader@example.com", scope="org", role="READER"),
            "owner's key capped to READER": self.key("owner@example.com", scope="org", role="READER"),
        }

    def _run(self, fn: Callable[[Database], Any]) -> Any:
        from tests.conftest import _in_thread

        async def run() -> Any:
            db = Database(self.database_url)
            try:
                return await fn(db)
            finally:
                await db.dispose()

        return _in_thread(run)

    async def _rows_without_http(self, db: Database) -> tuple[str, int]:
        """A webhook (its URL would be refused over HTTP here: no public address) and a graph entity."""
        async with db.transaction() as conn:
            hook = (
                await conn.execute(
                    text(
                        "INSERT INTO webhooks (id, project_id, name, url, event_types, secret, owner) "
                        "VALUES (gen_random_uuid(), :p, 'hook', 'https://hooks.example.com/x', ARRAY['memory_add'], "
                        "'whsec_test', 'owner@example.com') RETURNING id"
                    ),
                    {"p": self.project_id},
                )
            ).scalar_one()
            node = (
                await conn.execute(
                    text(
                        "INSERT INTO graph_nodes (project_id, user_id, name, key, type, aliases) "
                        "VALUES (:p, 'alice', 'Green tea', 'green tea', 'drink', ARRAY[]::text[]) RETURNING id"
                    ),
                    {"p": self.project_id},
                )
            ).scalar_one()
        return str(hook), int(node)

    def key(self, email: str, *, scope: str, role: str) -> str:
        async def make(db: Database) -> str:
            _, key = await admin.create_key(db, self.org_name, "main", "t", email, scope=scope, role=role)
            return key

        return str(self._run(make))

    def path(self, template: str) -> str:
        values = {
            "org_id": self.org_id,
            "project_id": self.project_id,
            "memory_id": self.memory_id,
            "webhook_id": self.webhook_id,
            "node_id": str(self.node_id),
            "entity_type": "user",
            "entity_id": "alice",
            "event_id": self.event_id,
            "job_id": str(uuid.uuid4()),
            "key_id": str(uuid.uuid4()),
            "name": "green tea",
            "first": self.memory_id,
            "second": "history",
        }
        out = template
        for name, value in values.items():
            out = out.replace("{" + name + "}", value)
        assert "{" not in out, f"{template}: give the table a value for its path parameter"
        return out

    async def snapshot(self, db: Database) -> dict[str, list[Any]]:
        """Every row of the org's state a write could change, jobs included (`events`: an accepted job is a write
        that spends the project's LLM and fills its queue). `memory_reads` aside: searches count reads."""
        by_project = [
            "events",
            "memories",
            "memory_history",
            "entities",
            "memory_feedback",
            "webhooks",
            "graph_nodes",
            "graph_relations",
            "profiles",
        ]
        queries = {t: f"SELECT * FROM {t} WHERE project_id = :p" for t in by_project}
        queries |= {
            "orgs": "SELECT * FROM orgs WHERE id = :o",
            "projects": "SELECT * FROM projects WHERE org_id = :o",
            "members": "SELECT * FROM members WHERE org_id = :o",
            "project_members": "SELECT pm.* FROM project_members pm JOIN projects p ON p.id = pm.project_id "
            "WHERE p.org_id = :o",
            "api_keys": "SELECT k.id, k.project_id, k.member_id, k.scope, k.revoked_at, k.name FROM api_keys k "
            "JOIN projects p ON p.id = k.project_id WHERE p.org_id = :o",
        }
        out = {}
        async with db.connect() as conn:
            for name, sql in queries.items():
                rows = (await conn.execute(text(sql), {"p": self.project_id, "o": self.org_id})).all()
                out[name] = sorted(tuple(str(v) for v in r) for r in rows)
        return out

    def close(self) -> None:
        self.owner.close()


@pytest.fixture
def llm_server(llm_live: tuple[Any, Any]) -> str:
    """A memserver with an LLM configured: the routes that spend one get past "no LLM" and do their work."""
    return str(llm_live[0].url)


@pytest.fixture
def project(llm_server: str, database_url: str, make_org: Callable[..., tuple[str, str, str]]) -> Iterator[Project]:
    p = Project(llm_server, database_url, make_org())
    yield p
    p.close()


def _routes_to_refuse(live_server: str) -> list[tuple[str, str]]:
    """Every route that is not a read: non-GET ones (the schema's, and the app's own aliases outside it) except
    READS, and any GET declared to need more than READER (the JSONL export, webhooks)."""
    spec = httpx.get(f"{live_server}/openapi.json").json()
    found = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method != "get" or op.get(ROLE_KEY) in REFUSING
    }
    found |= {(m, p) for (m, p), role in declared(_app()).items() if m != "GET" or role in REFUSING}
    return sorted(found - set(READS))


async def test_reader_keys_are_refused_every_write_and_change_nothing(
    project: Project, llm_server: str, db: Database
) -> None:
    before = await project.snapshot(db)
    refused = _routes_to_refuse(llm_server)
    assert len(refused) > 30  # the table covers the API, not a handful of routes
    answered: dict[str, list[str]] = {}
    for who, key in project.readers.items():
        with token_client(llm_server, key) as reader:
            assert reader.get("/v1/ping/").status_code == 200  # a working key: refusals below are for its role
            for method, template in refused:
                r = reader.request(method, project.path(template), json={})
                if r.status_code != 403 or "OWNER" not in r.json().get("detail", ""):
                    answered.setdefault(who, []).append(f"{method} {template} -> {r.status_code} {r.text[:120]}")
            for method, template, body in WRITES_THROUGH_READS:
                r = reader.request(method, project.path(template), json=body)
                if r.status_code != 403:
                    answered.setdefault(who, []).append(f"{method} {template} (a write) -> {r.status_code}")
            for (method, template), body in READS.items():
                r = reader.request(method, project.path(template), json=body)
                if r.status_code in (401, 403):
                    answered.setdefault(who, []).append(f"{method} {template} (a read) -> {r.status_code} {r.text}")
    assert answered == {}
    assert await project.snapshot(db) == before
    # the OWNER's key itself was not touched by making a capped key for the same member
    assert project.owner.post("/v1/memories/search/", json={"query": "tea", **ALICE}).status_code == 200
    assert project.owner.delete(f"/v1/memories/{project.memory_id}/").status_code == 200
