"""Organisations, projects, members and keys: who may do what (roles), and 403 JSON for a project or org
the key's member does not belong to. Every key here is made for a member, as `memserver keys create` does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from memserver.services import admin
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim
from tests.conftest import _in_thread

ORGS = "/api/v1/orgs/organizations"


class Org:
    """An org with project `main` and an org-scoped key of its OWNER."""

    def __init__(self, live_server: str, database_url: str, ids: tuple[str, str, str]):
        self.org_id, self.project_id, key = ids
        self.live_server = live_server
        self.database_url = database_url
        self.clients: list[httpx.Client] = []
        self.owner = self.client(key)
        self.name = self.owner.get(f"{ORGS}/{self.org_id}/").json()["name"]

    def client(self, key: str) -> httpx.Client:
        c = httpx.Client(base_url=self.live_server, headers={"Authorization": f"Token {key}"}, timeout=30)
        self.clients.append(c)
        return c

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def key(self, email: str, *, project: str = "main", scope: str = "project", role: str | None = None) -> str:
        """A key of member `email` (as `memserver keys create`)."""

        async def run() -> str:
            db = Database(self.database_url)
            try:
                _, key = await admin.create_key(db, self.name, project, "test", email, scope=scope, role=role)
                return key
            finally:
                await db.dispose()

        return str(_in_thread(run))

    def project(self, name: str) -> str:
        r = self.owner.post(f"{ORGS}/{self.org_id}/projects/", json={"name": name, "description": "d"})
        assert r.status_code == 200, r.text
        return str(r.json()["project_id"])


@pytest.fixture
def org(live_server: str, database_url: str, make_org: Callable[..., tuple[str, str, str]]) -> Iterator[Org]:
    o = Org(live_server, database_url, make_org())
    yield o
    o.close()


def forbidden(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["detail"]
    return body


def test_owner_creates_lists_gets_and_deletes_projects(org: Org) -> None:
    pid = org.project("support")
    listed = org.owner.get(f"{ORGS}/{org.org_id}/projects/").json()
    assert {p["name"] for p in listed} == {"main", "support"}
    got = org.owner.get(f"{ORGS}/{org.org_id}/projects/{pid}/")
    assert got.status_code == 200, got.text
    assert got.json()["project_id"] == pid
    assert got.json()["description"] == "d"
    assert got.json()["members"] == [
        {"username": "owner@example.com", "email": "owner@example.com", "role": "OWNER", "user_id": "owner@example.com"}
    ]
    dup = org.owner.post(f"{ORGS}/{org.org_id}/projects/", json={"name": "support"})
    assert dup.status_code == 400
    assert "already exists" in dup.json()["message"]
    assert dup.json()["errors"] == {"name": [dup.json()["message"]]}
    gone = org.owner.delete(f"{ORGS}/{org.org_id}/projects/{pid}/")
    assert gone.json() == {"message": "Project and related data deleted successfully."}
    assert forbidden(org.owner.get(f"{ORGS}/{org.org_id}/projects/{pid}/"))["message"]


def test_org_get_members_and_roles(org: Org) -> None:
    got = org.owner.get(f"{ORGS}/{org.org_id}/").json()
    assert got["org_id"] == org.org_id
    assert got["user_role"] == "OWNER"
    mine = [o for o in org.owner.get(f"{ORGS}/").json() if o["is_default"]]
    assert [o["org_id"] for o in mine] == [org.org_id]
    r = org.owner.post(f"{ORGS}/{org.org_id}/members/", json={"email": "r@example.com", "role": "READER"})
    assert r.status_code == 201, r.text
    assert org.owner.put(f"{ORGS}/{org.org_id}/members/", json={"email": "r@example.com", "role": "OWNER"}).is_success
    members = {m["email"]: m["role"] for m in org.owner.get(f"{ORGS}/{org.org_id}/members/").json()["members"]}
    assert members == {"owner@example.com": "OWNER", "r@example.com": "OWNER"}
    bad = org.owner.post(f"{ORGS}/{org.org_id}/members/", json={"email": "x@example.com", "role": "ADMIN"})
    assert bad.status_code == 400
    removed = org.owner.request("DELETE", f"{ORGS}/{org.org_id}/members/", json={"email": "r@example.com"})
    assert removed.json()["message"] == "User removed from organization."
    last = org.owner.request("DELETE", f"{ORGS}/{org.org_id}/members/", json={"email": "owner@example.com"})
    assert last.status_code == 400  # the last OWNER stays


def test_project_members_add_change_remove(org: Org) -> None:
    base = f"{ORGS}/{org.org_id}/projects/{org.project_id}/members/"
    assert org.owner.post(base, json={"email": "u+1@x.com", "role": "READER"}).json() == {
        "message": "User added to the project successfully."
    }
    assert org.owner.put(base, json={"email": "u+1@x.com", "role": "OWNER"}).json() == {
        "message": "User role updated successfully."
    }
    roles = {m["email"]: m["role"] for m in org.owner.get(base).json()["members"]}
    assert roles == {"owner@example.com": "OWNER", "u+1@x.com": "OWNER"}
    assert org.owner.delete(base, params={"email": "u+1@x.com"}).json() == {
        "message": "Member removed from the project"
    }
    assert "u+1@x.com" not in {m["email"] for m in org.owner.get(base).json()["members"]}
    assert org.owner.delete(base, params={"email": "u+1@x.com"}).status_code == 404


def test_a_reader_reads_but_may_not_write(org: Org) -> None:
    add_verbatim(org.owner, "Alice likes tea.")
    reader = org.client(org.key("reader@example.com", role="READER"))
    assert reader.get("/v1/ping/").json()["project_id"] == org.project_id
    listed = reader.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["results"]
    assert [m["memory"] for m in listed] == ["Alice likes tea."]
    mid = listed[0]["id"]
    assert reader.get(f"/v1/memories/{mid}/").status_code == 200
    assert reader.get(f"{ORGS}/{org.org_id}/projects/{org.project_id}/").json()["user_role"] == "READER"
    body = forbidden(
        reader.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": "x"}], "user_id": "alice", "infer": False},
        )
    )
    assert "needs OWNER" in body["detail"]
    forbidden(reader.put(f"/v1/memories/{mid}/", json={"text": "hijacked"}))
    forbidden(reader.delete(f"/v1/memories/{mid}/"))
    forbidden(reader.delete("/v1/memories/", params={"user_id": "alice"}))
    forbidden(reader.delete("/v2/entities/user/alice/"))
    forbidden(reader.patch(f"{ORGS}/{org.org_id}/projects/{org.project_id}/", json={"custom_instructions": "x"}))
    forbidden(
        reader.post(
            f"{ORGS}/{org.org_id}/projects/{org.project_id}/members/", json={"email": "z@x.com", "role": "OWNER"}
        )
    )
    forbidden(reader.post(f"{ORGS}/{org.org_id}/projects/", json={"name": "mine"}))
    forbidden(reader.delete(f"{ORGS}/{org.org_id}/projects/{org.project_id}/"))
    assert reader.get(f"/v1/memories/{mid}/").json()["memory"] == "Alice likes tea."


def test_a_member_without_a_role_in_a_project_gets_403(org: Org) -> None:
    other = org.project("other")
    add_verbatim(org.owner, "Secret of other.", project_id=other)
    # an org-scoped key of a READER of the org with a role in `main` only
    key = org.client(org.key("m@example.com", scope="project", role="READER"))
    scoped = org.client(org.key("m@example.com", scope="org"))
    for client in (key, scoped):
        forbidden(client.post("/v3/memories/", json={"filters": {"user_id": "alice"}, "project_id": other}))
        forbidden(client.get("/v1/entities/", params={"org_id": org.org_id, "project_id": other}))
        forbidden(client.get(f"{ORGS}/{org.org_id}/projects/{other}/"))
    # the org OWNER reaches `other` by naming it
    named = org.owner.post("/v3/memories/", json={"filters": {"user_id": "alice"}, "project_id": other})
    assert [m["memory"] for m in named.json()["results"]] == ["Secret of other."]
    assert org.owner.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["results"] == []
    # given a role there, the org-scoped key reaches it; the project-scoped key still does not
    assert org.owner.post(
        f"{ORGS}/{org.org_id}/projects/{other}/members/", json={"email": "m@example.com", "role": "READER"}
    ).is_success
    ok = scoped.post("/v3/memories/", json={"filters": {"user_id": "alice"}, "project_id": other})
    assert [m["memory"] for m in ok.json()["results"]] == ["Secret of other."]
    assert scoped.get("/v1/ping/", params={"project_id": other}).json()["project_id"] == other
    forbidden(key.post("/v3/memories/", json={"filters": {"user_id": "alice"}, "project_id": other}))
    projects = {p["name"] for p in scoped.get(f"{ORGS}/{org.org_id}/projects/").json()}
    assert projects == {"main", "other"}
    assert {p["name"] for p in key.get(f"{ORGS}/{org.org_id}/projects/").json()} == {"main"}


def test_another_org_is_403_everywhere(
    org: Org, live_server: str, database_url: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    add_verbatim(org.owner, "Org A memory.")
    b = Org(live_server, database_url, make_org())
    a_project = f"{ORGS}/{org.org_id}/projects/{org.project_id}/"
    for r in (
        b.owner.get(f"{ORGS}/{org.org_id}/"),
        b.owner.delete(f"{ORGS}/{org.org_id}/"),
        b.owner.get(f"{ORGS}/{org.org_id}/members/"),
        b.owner.post(f"{ORGS}/{org.org_id}/members/", json={"email": "e@x.com", "role": "OWNER"}),
        b.owner.get(f"{ORGS}/{org.org_id}/projects/"),
        b.owner.post(f"{ORGS}/{org.org_id}/projects/", json={"name": "x"}),
        b.owner.get(a_project),
        b.owner.patch(a_project, json={"custom_instructions": "pwned"}),
        b.owner.delete(a_project),
        b.owner.get(a_project + "members/"),
        b.owner.post(a_project + "members/", json={"email": "e@x.com", "role": "OWNER"}),
        b.owner.get(f"{ORGS}/{b.org_id}/projects/{org.project_id}/"),  # A's project under B's org
        b.owner.post("/v3/memories/", json={"filters": {"user_id": "alice"}, "project_id": org.project_id}),
        b.owner.post("/v3/memories/", json={"filters": {"user_id": "alice"}, "org_id": org.org_id}),
        b.owner.get("/v1/memories/", params={"user_id": "alice", "org_id": org.org_id, "project_id": org.project_id}),
        b.owner.get("/v1/ping/", params={"project_id": "not-a-uuid"}),
    ):
        assert r.status_code == 403, (r.request.method, r.request.url, r.text)
        assert r.json()["detail"]
    got = org.owner.get(a_project).json()
    assert got["custom_instructions"] is None
    assert [
        m["memory"] for m in org.owner.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["results"]
    ] == ["Org A memory."]
    b.close()


def test_project_scoped_keys_manage_nothing_beyond_their_project(org: Org) -> None:
    key = org.client(org.key("p@example.com"))  # project OWNER, project-scoped
    forbidden(key.post(f"{ORGS}/{org.org_id}/projects/", json={"name": "x"}))
    forbidden(key.delete(f"{ORGS}/{org.org_id}/"))
    forbidden(key.post(f"{ORGS}/{org.org_id}/members/", json={"email": "e@x.com", "role": "OWNER"}))
    assert key.patch(f"{ORGS}/{org.org_id}/projects/{org.project_id}/", json={"multilingual": True}).is_success


def test_removing_a_member_stops_its_keys(org: Org) -> None:
    key = org.client(org.key("gone@example.com"))
    assert key.get("/v1/ping/").status_code == 200
    r = org.owner.request("DELETE", f"{ORGS}/{org.org_id}/members/", json={"email": "gone@example.com"})
    assert r.is_success, r.text
    import time

    time.sleep(5.5)  # another process may have cached the key for MEMSERVER_AUTH__KEY_CACHE_TTL_S
    assert key.get("/v1/ping/").status_code == 401


def test_deleting_the_org_deletes_its_projects_and_keys(org: Org) -> None:
    add_verbatim(org.owner, "soon gone")
    assert org.owner.delete(f"{ORGS}/{org.org_id}/").json() == {"message": "Organization deleted successfully!"}
    assert org.owner.get("/v1/ping/").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{ORGS}/"),
        ("POST", f"{ORGS}/"),
        ("GET", f"{ORGS}/00000000-0000-4000-8000-000000000000/projects/"),
        ("PATCH", f"{ORGS}/00000000-0000-4000-8000-000000000000/projects/00000000-0000-4000-8000-000000000000/"),
        ("POST", "/v1/feedback/"),
        ("GET", "/v1/feedback/"),
        ("GET", "/v1/stats/"),
        ("GET", "/v1/entities/filters/"),
        ("GET", "/v1/memserver/export/"),
        ("POST", "/v1/memserver/import/"),
        ("POST", "/v1/exports/"),
        ("POST", "/v1/exports/get/"),
        ("POST", "/v1/summary/"),
        ("GET", "/v2/profiles/settings/"),
        ("POST", "/v2/profiles/jobs/"),
        ("GET", "/v2/profiles/jobs/00000000-0000-4000-8000-000000000000/"),
        ("GET", "/v2/entities/user/alice/profile/"),
    ],
)
def test_the_new_routes_need_a_valid_key(live_server: str, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Token m0-not-a-key"}):
        r = httpx.request(method, live_server + path, headers=headers, json={})
        assert r.status_code == 401, (path, r.text)
        assert "Invalid API key" in r.json()["detail"]


def test_member_errors_name_their_field(org: Org) -> None:
    """A client shows each error at its field (`errors`, a memserver extension); `message` is unchanged."""
    project = f"{ORGS}/{org.org_id}/projects/{org.project_id}/members/"
    members = f"{ORGS}/{org.org_id}/members/"
    r = org.owner.post(project, json={"email": "nobody", "role": "READER"})
    assert (r.status_code, r.json()["message"]) == (400, "a valid email is required")
    assert r.json()["errors"] == {"email": ["a valid email is required"]}
    r = org.owner.put(members, json={"email": "x@example.com", "role": "ADMIN"})
    assert (r.status_code, r.json()["message"]) == (400, "role must be one of OWNER, READER")
    assert r.json()["errors"] == {"role": ["role must be one of OWNER, READER"]}
    r = org.owner.put(members, json={"email": "owner@example.com", "role": "READER"})
    assert r.status_code == 400, r.text
    assert list(r.json()["errors"]) == ["role"]
    assert "last OWNER" in r.json()["errors"]["role"][0]
    r = org.owner.request("DELETE", members, json={"email": "owner@example.com"})
    assert r.status_code == 400, r.text
    assert list(r.json()["errors"]) == ["email"]
