"""Helpers shared by the HTTP tests: verbatim adds, error assertions, authenticated clients."""

from __future__ import annotations

from typing import Any

import httpx

ADD_V3 = "/v3/memories/add/"
ENTITY_KEYS = {"user_id", "agent_id", "app_id", "run_id"}


def verbatim_add_body(*texts: str, **fields: Any) -> dict[str, Any]:
    """A v3 add storing each text verbatim (infer=false), in order. Without any entity id (top level
    or in `filters`) the memories belong to user "alice"."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": t} for t in texts], "infer": False}
    if "filters" not in fields and not ENTITY_KEYS & fields.keys():
        body["user_id"] = "alice"
    body.update(fields)
    return body


def add_verbatim(api: httpx.Client, *texts: str, **fields: Any) -> list[str]:
    """Store texts verbatim through POST /v3/memories/add/; returns the memory ids in order."""
    r = api.post(ADD_V3, json=verbatim_add_body(*texts, **fields))
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["results"]]


def assert_error(r: httpx.Response, status: int, *, detail: str | None = None, **keys: Any) -> dict[str, Any]:
    """The response is this exact status with a JSON error body whose `detail` is a non-empty string
    (what the Python SDK shows to users). `detail`, when given, must occur in it; every other keyword is a
    key of the body that must equal its value (`error=...`). Returns the body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body: dict[str, Any] = r.json()
    assert isinstance(body.get("detail"), str), body
    assert body["detail"], body
    if detail is not None:
        assert detail in body["detail"], body
    for k, v in keys.items():
        assert body[k] == v, body
    return body


def token_client(base_url: str, key: str) -> httpx.Client:
    """A raw HTTP client authenticated with `key` (use it as a context manager)."""
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Token {key}"}, timeout=30)


def async_token_client(base_url: str | httpx.URL, key: str) -> httpx.AsyncClient:
    """The async twin of `token_client`."""
    return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Token {key}"}, timeout=30)
