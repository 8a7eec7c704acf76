"""Webhooks in the console (#/settings/webhooks): create with the signing secret shown once (and copied), edit,
pause, resume, delete; a webhook's deliveries with every attempt, and "Send test event", against a real
receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from memserver.providers.webhooks.signature import SIGNATURE_HEADER, verify
from tests.console.conftest import Receiver, Watched, closed_port_url, sign_in


@pytest.fixture
def context_options() -> dict[str, Any]:
    return {"permissions": ["clipboard-read", "clipboard-write"]}


def _client(live_server: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}, timeout=30)


def _hooks(live_server: str, key: str, project_id: str) -> list[dict[str, Any]]:
    with _client(live_server, key) as c:
        r = c.get(f"/api/v1/webhooks/projects/{project_id}/")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def _create(live_server: str, key: str, project_id: str, url: str, name: str = "hook") -> dict[str, Any]:
    with _client(live_server, key) as c:
        r = c.post(
            f"/api/v1/webhooks/projects/{project_id}/", json={"url": url, "name": name, "event_types": ["memory_add"]}
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


def _add(live_server: str, key: str, text: str) -> None:
    with _client(live_server, key) as c:
        r = c.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": text}], "user_id": "alice", "infer": False},
        )
        assert r.status_code == 200, r.text


async def _open_webhooks(w: Watched, key: str) -> Page:
    await sign_in(w, key)
    page = w.page
    await page.goto(f"{w.base_url}/console#/settings/webhooks")
    await expect(page.get_by_role("tab", name="Webhooks")).to_have_attribute("aria-selected", "true")
    return page


async def test_create_shows_the_secret_once_and_copies_it(
    watched: Watched, live_server: str, tenant: tuple[str, str], receiver: Receiver
) -> None:
    project_id, key = tenant
    page = await _open_webhooks(watched, key)
    await expect(page.locator("#tabpanel")).to_contain_text("No webhooks yet.")
    await page.locator("#tabpanel").get_by_role("button", name="Create webhook").click()
    dialog = page.get_by_role("dialog", name="Create webhook")
    await dialog.get_by_label("Name").fill("receiver")
    await dialog.get_by_label("URL").fill("ftp://nowhere")
    await dialog.get_by_role("button", name="Create webhook").click()
    # the API's words at the URL field; nothing created
    url_box = dialog.get_by_label("URL")
    await expect(url_box).to_have_attribute("aria-invalid", "true")
    await expect(dialog.locator(".field-error")).not_to_have_count(0)
    assert _hooks(live_server, key, project_id) == []
    await dialog.get_by_label("URL").fill(receiver.url)
    await expect(dialog.get_by_label("memory_add")).to_be_checked()
    await dialog.get_by_role("button", name="Create webhook").click()

    panel = page.get_by_role("alertdialog", name="Webhook created")
    await expect(panel).to_contain_text("never shown again")
    secret = await panel.get_by_label("Signing secret").input_value()
    assert len(secret) >= 16
    await panel.get_by_role("button", name="Copy").click()
    await expect(page.locator("#status")).to_contain_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    await watched.shot("30-webhook-secret")
    await panel.get_by_role("button", name="I have stored it").click()
    await expect(panel).to_have_count(0)

    # the secret is gone: not in the document, the storages, the URL; the list answer has none
    await expect(page.locator("#webhooks-table tr", has_text="receiver")).to_contain_text("Active")
    assert secret not in await page.content()
    stored = await page.evaluate(
        "JSON.stringify([{...sessionStorage}, {...localStorage}, document.cookie, location.href])"
    )
    assert secret not in stored
    assert await page.evaluate("indexedDB.databases().then(d => d.length)") == 0
    assert await page.context.cookies() == []
    listed = _hooks(live_server, key, project_id)
    assert [h["name"] for h in listed] == ["receiver"]
    assert secret not in json.dumps(listed)
    await watched.shot("31-webhooks-list")

    # a receiver verifies a delivery with that secret
    _add(live_server, key, "Alice likes tea.")
    (req,) = receiver.wait(1)
    assert verify(secret, req["headers"][SIGNATURE_HEADER], req["body"])
    assert json.loads(req["body"])["event_type"] == "memory_add"


async def test_edit_pause_resume_delete(
    watched: Watched, live_server: str, tenant: tuple[str, str], receiver: Receiver
) -> None:
    project_id, key = tenant
    _create(live_server, key, project_id, receiver.url, name="first")
    page = await _open_webhooks(watched, key)
    row = page.locator("#webhooks-table tbody tr").first
    await expect(row).to_contain_text("first")

    await row.get_by_role("button", name="Edit webhook first").click()
    dialog = page.get_by_role("dialog", name="Edit webhook first")
    await dialog.get_by_label("Name").fill("renamed")
    await dialog.get_by_label("memory_update").check()
    await dialog.get_by_role("button", name="Save webhook").click()
    await expect(dialog).to_have_count(0)
    await expect(row).to_contain_text("renamed")
    (hook,) = _hooks(live_server, key, project_id)
    assert hook["name"] == "renamed"
    assert sorted(hook["event_types"]) == ["memory_add", "memory_update"]

    await row.get_by_role("button", name="Pause webhook renamed").click()
    await expect(row).to_contain_text("Paused")
    assert _hooks(live_server, key, project_id)[0]["is_active"] is False
    await watched.shot("32-webhook-paused")
    _add(live_server, key, "Nothing is sent for this one.")
    await asyncio.sleep(2)
    assert receiver.requests == []

    await row.get_by_role("button", name="Resume webhook renamed").click()
    await expect(row).to_contain_text("Active")
    assert _hooks(live_server, key, project_id)[0]["is_active"] is True

    await row.get_by_role("button", name="Delete webhook renamed").click()
    confirm = page.get_by_role("dialog", name="Delete webhook?")
    await expect(confirm).to_contain_text("webhook deleted")
    await page.keyboard.press("Escape")
    assert len(_hooks(live_server, key, project_id)) == 1
    await row.get_by_role("button", name="Delete webhook renamed").click()
    await confirm.get_by_role("button", name="Delete").click()
    await expect(page.locator("#tabpanel")).to_contain_text("No webhooks yet.")
    assert _hooks(live_server, key, project_id) == []


async def test_deliveries_show_every_attempt_and_the_test_event(
    watched: Watched, live_server: str, tenant: tuple[str, str], receiver: Receiver
) -> None:
    project_id, key = tenant
    receiver.script(500)
    hook = _create(live_server, key, project_id, receiver.url, name="flaky")
    _add(live_server, key, "Alice likes green tea.")
    receiver.wait(2)  # the 500, then the retry's 200

    page = await _open_webhooks(watched, key)
    await page.get_by_role("link", name="Deliveries of webhook flaky").click()
    await expect(page.get_by_role("heading", name="Deliveries of flaky")).to_be_visible()
    assert page.url.endswith(f"#/settings/webhooks/{hook['webhook_id']}")
    rows = page.locator("#deliveries-table tbody tr")
    deadline = time.monotonic() + 20
    while "SUCCEEDED" not in (await rows.first.inner_text()) and time.monotonic() < deadline:
        await page.reload()
        await expect(rows).to_have_count(1)
    first = rows.first
    await expect(first.locator(".badge")).to_have_text("SUCCEEDED")
    toggle = first.get_by_role("button", name="Attempts of delivery")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    attempts = first.locator("li.attempt")
    await expect(attempts).to_have_count(2)
    await expect(attempts.nth(0)).to_contain_text("Attempt 1")
    await expect(attempts.nth(0)).to_contain_text("HTTP 500")
    await expect(attempts.nth(0)).to_contain_text("receiver answered HTTP 500")
    await expect(attempts.nth(0)).to_contain_text(" ms")
    await expect(attempts.nth(1)).to_contain_text("HTTP 200")
    await watched.shot("33-webhook-deliveries")

    await page.get_by_role("button", name="Send test event").click()
    await expect(page.locator("#status")).to_contain_text("Test delivered: HTTP 200", timeout=30_000)
    test_req = receiver.wait(3)[2]
    assert json.loads(test_req["body"])["event_type"] == "webhook_test"
    assert verify(hook["secret"], test_req["headers"][SIGNATURE_HEADER], test_req["body"])
    highlighted = page.locator("#deliveries-table tr.highlight")
    await expect(highlighted.locator(".badge")).to_have_text("SUCCEEDED")
    await expect(highlighted).to_contain_text("webhook_test")
    await expect(rows).to_have_count(2)
    await watched.shot("34-webhook-test-sent")

    # a receiver that is not there: the test delivery fails once, with the error
    dead = _create(live_server, key, project_id, closed_port_url(), name="gone")
    await page.goto(f"{live_server}/console#/settings/webhooks/{dead['webhook_id']}")
    await expect(page.get_by_role("heading", name="Deliveries of gone")).to_be_visible()
    await page.get_by_role("button", name="Send test event").click()
    await expect(page.locator("#status")).to_contain_text("Test delivery failed", timeout=30_000)
    failed = page.locator("#deliveries-table tr.highlight")
    await expect(failed.locator(".badge")).to_have_text("FAILED")
    await failed.get_by_role("button", name="Attempts of delivery").click()
    await expect(failed.locator("li.attempt")).to_have_count(1)
    await expect(failed.locator("li.attempt")).to_contain_text("no answer")
    await expect(failed.locator(".attempt-error")).not_to_be_empty()
    await watched.shot("35-webhook-test-failed")
