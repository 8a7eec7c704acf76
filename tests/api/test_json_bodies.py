"""One reader for the JSON object bodies that have no model of their own (project settings, exports, summaries,
profiles, webhooks): every such route refuses a body that is not a JSON object, and NUL characters anywhere in
it, with the same 400, and reads an empty body as `{}`."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

NOT_AN_OBJECT = "the body must be a JSON object"
NOT_JSON = "the body must be a JSON object (unexpected end of data: line 1 column 2 (char 1))"
NUL = "the body must be a JSON object (NUL characters are not allowed)"


def routes(org_id: str, project_id: str) -> list[tuple[str, str, str]]:
    """(method, path, the key of the route's error shape)"""
    return [
        ("PATCH", f"/api/v1/orgs/organizations/{org_id}/projects/{project_id}/", "message"),
        ("POST", "/v1/exports/", "message"),
        ("POST", "/v1/exports/get/", "error"),
        ("POST", "/v1/summary/", "error"),
        ("POST", "/v2/profiles/settings/", "error"),
        ("POST", "/v2/profiles/jobs/", "error"),
        ("POST", f"/api/v1/webhooks/projects/{project_id}/", "error"),
        ("PUT", f"/api/v1/webhooks/{uuid.uuid4()}/", "error"),
    ]


@pytest.fixture
def owner(live_server: str, make_org: Callable[..., tuple[str, str, str]]) -> tuple[httpx.Client, str, str]:
    org_id, project_id, key = make_org()
    return httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}, timeout=30), org_id, project_id


def test_every_json_object_route_refuses_the_same_bodies_the_same_way(owner: tuple[httpx.Client, str, str]) -> None:
    client, org_id, project_id = owner
    bodies = {
        b"[1, 2]": NOT_AN_OBJECT,
        b'"text"': NOT_AN_OBJECT,
        b"{": NOT_JSON,
        b'{"name": "a\\u0000b", "url": "https://x.example.com", "event_types": ["memory_add"]}': NUL,
        b'{"filters": {"user_id": "u"}, "schema": {"\\u0000": 1}}': NUL,
    }
    seen = []
    with client:
        for method, path, key in routes(org_id, project_id):
            for raw, why in bodies.items():
                r = client.request(method, path, content=raw, headers={"content-type": "application/json"})
                body = r.json()
                body.pop("request_id")
                seen.append((method, path, raw[:12], r.status_code, body == {key: why, "detail": why}))
    assert [s for s in seen if s[3:] != (400, True)] == []


def test_an_empty_body_is_an_empty_object(owner: tuple[httpx.Client, str, str]) -> None:
    client, _, project_id = owner
    with client:
        r = client.post(f"/api/v1/webhooks/projects/{project_id}/", content=b"")
        assert r.status_code == 400
        assert r.json()["detail"] == (
            "name: This field is required.; url: This field is required.; event_types: This field is required."
        )
        r = client.put(f"/api/v1/webhooks/{uuid.uuid4()}/", content=b"")
        assert (r.status_code, r.json()["detail"]) == (404, "Webhook not found")
        r = client.post("/v2/profiles/settings/", content=b"")
        assert r.status_code == 200, r.text
