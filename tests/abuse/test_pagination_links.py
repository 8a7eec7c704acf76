"""Pagination links are built from the configured public URL or an allowed host, never from a forged Host
header."""

from __future__ import annotations

import httpx

from tests.api.helpers import add_verbatim


def test_pagination_links_ignore_a_forged_host(api: httpx.Client) -> None:
    add_verbatim(api, "one", "two", user_id="pages")
    r = api.get(
        "/v1/memories/", params={"user_id": "pages", "page": 1, "page_size": 1}, headers={"Host": "evil.example"}
    )
    assert r.status_code == 200, r.text
    nxt = r.json()["next"]
    assert nxt
    assert "evil.example" not in nxt
    assert nxt.startswith("/v1/memories/?")
    r = api.get("/v1/memories/", params={"user_id": "pages", "page": 1, "page_size": 1})
    assert r.json()["next"].startswith(str(api.base_url).rstrip("/") + "/v1/memories/?")  # 127.0.0.1 is allowed
