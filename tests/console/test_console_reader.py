"""A READER in the console: every page and settings tab shows the project's data with no write control (none
is created: `[data-write]` is absent, and no control is named like a write), and writes forged from the page
with the session's key are refused by the API, which then shows nothing changed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from playwright.async_api import expect

from tests.console.conftest import Receiver, Watched, seed, sign_in

WRITE_WORDS = re.compile(
    r"\b(save|create|add|edit|delete|remove|revoke|pause|resume|import|export|send test)\b", re.IGNORECASE
)
# The API's own operation names (an event's or a history entry's type: "Details of the ADD event of ...") are
# data shown in capitals, not actions; they are taken out (case-sensitively) before the words are looked for.
OPERATIONS = re.compile(r"\b(ADD|UPDATE|DELETE|NOOP)\b")

# Every control's accessible name, as a screen reader announces it (aria-label, its labels, its text).
CONTROLS_JS = """() => [...document.querySelectorAll(
    'main button, main a[href], main input, main select, main textarea, main [role=button], dialog button')]
  .filter(e => e.offsetParent !== null || e.closest('dialog[open]'))
  .map(e => (e.getAttribute('aria-label')
             || (e.labels && e.labels.length ? [...e.labels].map(l => l.textContent).join(' ') : '')
             || e.textContent || e.value || '').trim())"""


def _reader_key(live_server: str, org_id: str, project_id: str, owner_key: str) -> str:
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {owner_key}"}) as c:
        r = c.post(
            f"/api/v1/orgs/organizations/{org_id}/keys",
            json={"name": "reader", "project_id": project_id, "email": "boss@example.com", "role": "READER"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["key"])


def _snapshot(live_server: str, org_id: str, project_id: str, owner_key: str, memory_id: str) -> dict[str, Any]:
    """What the forged writes would change, read with the owner's key."""
    base = f"/api/v1/orgs/organizations/{org_id}"
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {owner_key}"}) as c:
        return {
            "project": c.get(f"{base}/projects/{project_id}/").json(),
            "profiles": c.get("/v2/profiles/settings/").json(),
            "hooks": c.get(f"/api/v1/webhooks/projects/{project_id}/").json(),
            # which keys exist and their state (the reader's own last use moves, as it should)
            "keys": [
                {k: v for k, v in key.items() if k != "last_used_at"} for key in c.get(f"{base}/keys").json()["keys"]
            ],
            "members": c.get(f"{base}/projects/{project_id}/members/").json(),
            "org_members": c.get(f"{base}/members/").json(),
            "memory": c.get(f"/v1/memories/{memory_id}/").json(),
            "memories": c.post("/v2/memories/", json={"filters": {"user_id": "alice"}}).json(),
        }


async def _visit(w: Watched, hash_path: str, name: str) -> None:
    await w.page.evaluate("delete document.body.dataset.ready")
    await w.page.evaluate("h => { location.hash = h; }", hash_path)
    await w.page.wait_for_function("n => document.body.dataset.ready === n", arg=name)


async def test_reader_sees_every_page_and_no_write_control(
    watched: Watched, live_server: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    org_id, project_id, owner_key = make_org("boss@example.com")
    ids = await seed(live_server, owner_key)
    reader = _reader_key(live_server, org_id, project_id, owner_key)
    await sign_in(watched, reader)
    page = watched.page
    await expect(page.locator("#whoami")).to_contain_text("read-only")

    pages = [
        ("#/entities", "entities", "#entities-table tbody tr"),
        ("#/memories?etype=user_id&eid=alice", "memories", "#memories-table tbody tr"),
        ("#/search?query=where%20does%20alice%20live&etype=user_id&eid=alice", "search", "#search-hits > li"),
        (f"#/memory/{ids['home']}", "memory", "#history-out > li"),
        ("#/events", "events", "#events-table tbody tr"),
        (f"#/event/{ids['failed_event']}", "event", "#view-event"),
        ("#/graph", "graph", "#view-graph"),
        ("#/usage", "usage", "#view-usage"),
        ("#/settings/project", "settings", "#settings-values"),
        ("#/settings/webhooks", "settings", "#tabpanel .note"),
        ("#/settings/access", "settings", "#project-members-table"),
        ("#/settings/backup", "settings", "#tabpanel .note"),
    ]
    for hash_path, name, shown in pages:
        await _visit(watched, hash_path, name)
        await expect(page.locator(shown).first, hash_path).to_be_visible()
        assert await page.locator("[data-write]").count() == 0, hash_path
        names = await page.evaluate(CONTROLS_JS)
        writes = [n for n in names if WRITE_WORDS.search(OPERATIONS.sub("", n))]
        assert writes == [], (hash_path, writes)
        slug = hash_path.strip("#/").split("?")[0].replace("/", "-")[:40]
        await watched.shot(f"60-reader-{slug}")
    # the settings a READER cannot change are shown as text, and the key's limits are said
    await _visit(watched, "#/settings/project", "settings")
    await expect(page.locator("#settings-values")).to_contain_text("the 15 default categories")
    await expect(page.locator("#key-role")).to_contain_text("READER")


async def test_forged_writes_from_the_page_are_refused(
    watched: Watched, live_server: str, make_org: Callable[..., tuple[str, str, str]], receiver: Receiver
) -> None:
    org_id, project_id, owner_key = make_org("boss@example.com")
    ids = await seed(live_server, owner_key)
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {owner_key}"}) as c:
        hook = {"url": receiver.url, "name": "hook", "event_types": ["memory_add"]}
        r = await c.post(f"/api/v1/webhooks/projects/{project_id}/", json=hook)
        assert r.status_code == 201, r.text
        hook_id = r.json()["webhook_id"]
        owner_key_id = (await c.get("/v1/ping/")).json()["key_id"]
    reader = _reader_key(live_server, org_id, project_id, owner_key)
    before = _snapshot(live_server, org_id, project_id, owner_key, ids["home"])
    await sign_in(watched, reader)

    org = f"/api/v1/orgs/organizations/{org_id}"
    project = f"{org}/projects/{project_id}"
    calls = [
        ("PATCH", f"{project}/", {"custom_instructions": "forged"}),
        ("PATCH", f"{project}/dream/config/", {"reflection_enabled": True}),
        ("POST", "/v2/profiles/settings/", {"enabled": True}),
        (
            "POST",
            f"/api/v1/webhooks/projects/{project_id}/",
            {"url": receiver.url, "name": "forged", "event_types": ["memory_add"]},
        ),
        ("PUT", f"/api/v1/webhooks/{hook_id}/", {"is_active": False}),
        ("POST", f"/api/v1/webhooks/{hook_id}/test/", None),
        ("DELETE", f"/api/v1/webhooks/{hook_id}/", None),
        ("POST", f"{org}/keys", {"name": "forged", "project_id": project_id, "email": "boss@example.com"}),
        ("DELETE", f"{org}/keys/{owner_key_id}", None),
        ("POST", f"{project}/members/", {"email": "eve@example.com", "role": "OWNER"}),
        ("PUT", f"{project}/members/", {"email": "boss@example.com", "role": "READER"}),
        ("DELETE", f"{project}/members/?email=boss%40example.com", None),
        ("POST", f"{org}/members/", {"email": "eve@example.com", "role": "OWNER"}),
        ("PUT", f"{org}/members/", {"email": "boss@example.com", "role": "READER"}),
        ("DELETE", f"{org}/members/", {"email": "boss@example.com"}),
        ("PUT", f"/v1/memories/{ids['home']}/", {"text": "forged"}),
        ("DELETE", f"/v1/memories/{ids['home']}/", None),
        ("GET", "/v1/memserver/export/", None),
    ]
    statuses = await watched.page.evaluate(
        """async (calls) => {
            const key = sessionStorage.getItem('memserver.apiKey');
            const out = [];
            for (const [method, path, body] of calls) {
                const init = {method, headers: {Authorization: `Token ${key}`}};
                if (body !== null) {
                    init.headers['Content-Type'] = 'application/json';
                    init.body = JSON.stringify(body);
                }
                out.push([method, path, (await fetch(path, init)).status]);
            }
            const file = '{"record": "header", "format": "memserver-export", "version": 1}\\n';
            const r = await fetch('/v1/memserver/import/', {method: 'POST', body: file,
                headers: {Authorization: `Token ${key}`, 'Content-Type': 'application/x-ndjson'}});
            out.push(['POST', '/v1/memserver/import/', r.status]);
            return out;
        }""",
        calls,
    )
    refused = [(m, p, s) for m, p, s in statuses if s != 403]
    assert refused == [], refused
    assert len(statuses) == len(calls) + 1
    assert _snapshot(live_server, org_id, project_id, owner_key, ids["home"]) == before
    assert receiver.requests == []
