"""API keys over HTTP (memserver extension): an org OWNER, with an org-scoped key, lists the org's keys (never a
key or its hash), creates one (shown once) and revokes one, under `/api/v1/orgs/organizations/{org_id}/keys/`,
with the rules of `memserver keys create` (a member without a role in the project is refused, a new email
becomes a member, a key's role only caps its member's)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import add_verbatim, token_client

ORGS = "/api/v1/orgs/organizations"
ITEM_KEYS = {
    "key_id",
    "name",
    "prefix",
    "project_id",
    "project_name",
    "email",
    "scope",
    "role",
    "bound_user_id",
    "bound_agent_id",
    "default_user_id",
    "default_agent_id",
    "created_at",
    "last_used_at",
    "revoked_at",
}


class Org:
    def __init__(self, live_server: str, ids: tuple[str, str, str]):
        self.live_server = live_server
        self.org_id, self.project_id, self.owner_key = ids
        self.owner = token_client(live_server, self.owner_key)
        self.keys = f"{ORGS}/{self.org_id}/keys/"

    def create(self, **body: Any) -> httpx.Response:
        return self.owner.post(self.keys, json={"name": "k", "project_id": self.project_id, **body})

    def listed(self, **params: Any) -> list[dict[str, Any]]:
        r = self.owner.get(self.keys, params=params)
        assert r.status_code == 200, r.text
        return r.json()["keys"]  # type: ignore[no-any-return]


@pytest.fixture
def org(live_server: str, make_org: Callable[..., tuple[str, str, str]]) -> Iterator[Org]:
    o = Org(live_server, make_org())
    yield o
    o.owner.close()


def ping(live_server: str, key: str) -> httpx.Response:
    return httpx.get(f"{live_server}/v1/ping/", headers={"Authorization": f"Token {key}"})


def test_org_owner_creates_lists_and_revokes_a_key(org: Org, live_server: str) -> None:
    r = org.create(name="ann's reader", email="ann@example.com", role="READER")
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    key = created.pop("key")
    assert created.pop("message") == "Key created. It is shown once: store it now."
    assert key.startswith("m0-")
    assert set(created) == ITEM_KEYS
    assert (created["name"], created["email"], created["scope"], created["role"]) == (
        "ann's reader",
        "ann@example.com",
        "project",
        "READER",
    )
    assert created["project_id"] == org.project_id
    assert created["project_name"] == "main"
    assert key.startswith(created["prefix"])
    assert len(created["prefix"]) < 12
    # the key works, and is what it says: a READER of the project
    with token_client(live_server, key) as ann:
        assert ann.get("/v1/ping/").json()["role"] == "READER"
        assert ann.post("/v3/memories/add/", json={"messages": [{"role": "user", "content": "x"}]}).status_code == 403
        assert ann.get("/v1/memories/", params={"user_id": "alice"}).status_code == 200
    # a new email became a member (READER), as with `memserver keys create`
    members = org.owner.get(f"{ORGS}/{org.org_id}/projects/{org.project_id}/members/").json()["members"]
    assert {"email": "ann@example.com", "role": "READER"}.items() <= next(
        m for m in members if m["email"] == "ann@example.com"
    ).items()
    # listed with its prefix, never the key or its hash
    r = org.owner.get(org.keys)
    assert key not in r.text
    assert hashlib.sha256(key.encode()).hexdigest() not in r.text
    listed = {k["key_id"]: k for k in r.json()["keys"]}
    assert set(listed[created["key_id"]]) == ITEM_KEYS
    assert listed[created["key_id"]]["last_used_at"] is not None  # it was used above
    assert {k["email"] for k in listed.values()} == {"owner@example.com", "ann@example.com"}
    # revoked: it stops working at once in this process, and leaves the default listing
    r = org.owner.delete(f"{org.keys}{created['key_id']}/")
    assert (r.status_code, r.json()) == (200, {"message": "Key revoked."})
    assert ping(live_server, key).status_code == 401
    assert created["key_id"] not in {k["key_id"] for k in org.listed()}
    (gone,) = [k for k in org.listed(include_revoked="true") if k["key_id"] == created["key_id"]]
    assert gone["revoked_at"] is not None
    r = org.owner.delete(f"{org.keys}{created['key_id']}")
    assert (r.status_code, r.json()["message"]) == (404, "Key not found")


def test_keys_of_one_project_and_bound_and_org_scoped_keys(org: Org, live_server: str) -> None:
    second = org.owner.post(f"{ORGS}/{org.org_id}/projects/", json={"name": "second"}).json()["project_id"]
    r = org.create(project_id=second, email="owner@example.com", bind_user_id="alice", default_agent_id="bot")
    assert r.status_code == 201, r.text
    bound = r.json()
    assert (bound["bound_user_id"], bound["default_user_id"], bound["default_agent_id"]) == ("alice", "alice", "bot")
    with token_client(live_server, bound["key"]) as alice:
        assert alice.get("/v1/ping/").json()["bound_user_id"] == "alice"
        assert alice.get("/v1/memories/", params={"user_id": "bob"}).status_code == 403
    r = org.create(email="ops@example.com", scope="org", role="OWNER")
    assert r.status_code == 201, r.text
    assert ping(live_server, r.json()["key"]).json()["key_scope"] == "org"
    assert [k["key_id"] for k in org.listed(project_id=second)] == [bound["key_id"]]
    assert {k["project_id"] for k in org.listed()} == {org.project_id, second}


def test_only_an_org_owner_with_an_org_key_manages_keys(
    org: Org, live_server: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    r = org.create(email="reader@example.com", scope="org", role="READER")
    reader_org_key = r.json()["key"]
    r = org.create(email="owner@example.com")  # the org OWNER's own project-scoped key
    project_key = r.json()["key"]
    victim = org.listed()[0]["key_id"]
    for key in (reader_org_key, project_key):
        with token_client(live_server, key) as c:
            for method, path in (("GET", org.keys), ("POST", org.keys), ("DELETE", f"{org.keys}{victim}/")):
                r = c.request(method, path, json={"name": "x", "email": "e@example.com"})
                assert r.status_code == 403, (method, r.text)
                assert "OWNER" in r.json()["message"]
    other_org, _, other_key = make_org()
    with token_client(live_server, other_key) as other:
        assert other.get(org.keys).status_code == 403
        assert other.delete(f"{org.keys}{victim}/").status_code == 403
        # from its own org's path, this org's key is not found
        r = other.delete(f"{ORGS}/{other_org}/keys/{victim}/")
        assert (r.status_code, r.json()["message"]) == (404, "Key not found")
        assert victim not in {k["key_id"] for k in other.get(f"{ORGS}/{other_org}/keys/").json()["keys"]}
    assert ping(live_server, org.owner_key).status_code == 200


def test_key_creation_errors_name_their_fields(org: Org) -> None:
    r = org.owner.post(org.keys, json={"project_id": org.project_id})
    assert r.status_code == 400, r.text
    assert set(r.json()["errors"]) == {"name", "email"}
    assert r.json()["message"] == r.json()["errors"]["name"][0]
    r = org.create(email="x", scope="everything", role="ADMIN", bind_user_id="*", default_user_id=5)
    assert set(r.json()["errors"]) == {"email", "scope", "role", "bind_user_id", "default_user_id"}, r.text
    assert r.json()["errors"]["role"] == ["role must be one of OWNER, READER"]
    r = org.owner.post(org.keys, json={"name": "k", "email": "e@example.com"})
    assert r.json()["errors"] == {"project_id": ["project_id is required"]}, r.text
    r = org.create(email="e@example.com", bind_user_id="alice", default_user_id="bob")
    assert list(r.json()["errors"]) == ["default_user_id"], r.text
    # an existing member without a role in the project: a key of theirs could do nothing
    assert org.owner.post(f"{ORGS}/{org.org_id}/members/", json={"email": "m@example.com", "role": "READER"}).is_success
    r = org.create(email="m@example.com")
    assert r.status_code == 400, r.text
    assert list(r.json()["errors"]) == ["email"]
    assert "no role in this project" in r.json()["message"]
    # a project of another org is out of this key's reach
    r = org.create(email="e@example.com", project_id="00000000-0000-0000-0000-000000000000")
    assert r.status_code == 403, r.text
    assert [k["email"] for k in org.listed()] == ["owner@example.com"]  # nothing was created


def test_the_last_key_that_can_manage_the_org_is_not_revoked(org: Org, live_server: str) -> None:
    (own,) = org.listed()
    r = org.owner.delete(f"{org.keys}{own['key_id']}/")
    assert r.status_code == 400, r.text
    assert "last key" in r.json()["message"]
    assert list(r.json()["errors"]) == ["key_id"]
    assert ping(live_server, org.owner_key).status_code == 200
    # once another can, it may go (revoking the key that calls is allowed)
    r = org.create(email="owner@example.com", scope="org")
    assert r.status_code == 201
    assert org.owner.delete(f"{org.keys}{own['key_id']}/").status_code == 200
    assert ping(live_server, org.owner_key).status_code == 401
    with token_client(live_server, r.json()["key"]) as new_owner:
        add_verbatim(new_owner, "Still managed.")
        left = new_owner.get(org.keys).json()["keys"]
        assert [k["key_id"] for k in left] == [r.json()["key_id"]]
