"""`memserver orgs|projects|members|keys`: an operator manages orgs, projects, members, roles and key scopes
without HTTP, and the server honours them."""

from __future__ import annotations

import time

import httpx

from tests.unit.test_cli import cli


def test_members_roles_and_key_scopes(database_url: str, live_server: str) -> None:
    org = f"cli-platform-{time.time_ns()}"
    assert cli(database_url, "orgs", "create", org, "--owner", "boss@example.com").returncode == 0
    for name in ("a", "b"):
        assert cli(database_url, "projects", "create", name, "--org", org).returncode == 0
    # an org-scoped key of the OWNER reaches both projects; a READER's project key only reads `a`
    made = cli(
        database_url, "keys", "create", "--org", org, "--project", "a", "--email", "boss@example.com", "--scope", "org"
    )
    assert made.returncode == 0, made.stderr
    boss = made.stdout.strip().splitlines()[-1]
    made = cli(
        database_url, "keys", "create", "--org", org, "--project", "a", "--email", "r@example.com", "--role", "reader"
    )
    assert made.returncode == 0, made.stderr
    capped = made.stdout.strip().splitlines()[-1]  # a READER key: it stays one whatever its member becomes
    made = cli(database_url, "keys", "create", "--org", org, "--project", "a", "--email", "r@example.com")
    assert made.returncode == 0, made.stderr
    reader = made.stdout.strip().splitlines()[-1]  # no --role: the key acts with its member's role
    listing = cli(database_url, "members", "list", "--org", org, "--project", "a").stdout
    assert "boss@example.com  OWNER" in listing
    assert "r@example.com  READER" in listing
    assert "scope=org" in cli(database_url, "keys", "list").stdout

    def call(key: str, method: str, path: str, **kw: object) -> httpx.Response:
        return httpx.request(method, live_server + path, headers={"Authorization": f"Token {key}"}, **kw)  # type: ignore[arg-type]

    b = call(boss, "GET", "/v1/ping/").json()["org_id"]
    projects = {
        p["name"]: p["project_id"] for p in call(boss, "GET", f"/api/v1/orgs/organizations/{b}/projects/").json()
    }
    assert set(projects) == {"a", "b"}
    add = {"messages": [{"role": "user", "content": "hi"}], "user_id": "u", "infer": False}
    assert call(boss, "POST", "/v3/memories/add/", json={**add, "project_id": projects["b"]}).status_code == 200
    assert call(reader, "POST", "/v3/memories/add/", json=add).status_code == 403
    assert (
        call(
            reader, "POST", "/v3/memories/", json={"filters": {"user_id": "u"}, "project_id": projects["b"]}
        ).status_code
        == 403
    )
    # promoted by the operator, the reader may write
    assert (
        cli(
            database_url, "members", "set-role", "r@example.com", "--org", org, "--project", "a", "--role", "OWNER"
        ).returncode
        == 0
    )
    time.sleep(5.5)  # the server caches a resolved key for MEMSERVER_AUTH__KEY_CACHE_TTL_S
    assert call(reader, "POST", "/v3/memories/add/", json=add).status_code == 200
    assert call(capped, "POST", "/v3/memories/add/", json=add).status_code == 403
    assert cli(database_url, "members", "remove", "r@example.com", "--org", org).returncode == 0
    assert cli(database_url, "projects", "delete", "b", "--org", org).returncode == 0
    assert "/b " not in cli(database_url, "projects", "list", "--org", org).stdout
    assert cli(database_url, "orgs", "delete", org).returncode == 0
    time.sleep(5.5)
    assert call(boss, "GET", "/v1/ping/").status_code == 401
    assert call(reader, "GET", "/v1/ping/").status_code == 401
    assert call(capped, "GET", "/v1/ping/").status_code == 401
