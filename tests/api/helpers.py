"""Helpers shared by the HTTP tests."""

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
