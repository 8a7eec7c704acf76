"""Keys and members in the console (#/settings/access): an org OWNER's org-scoped key creates (shown once),
lists and revokes keys; members of the project and of the organization are added, changed and removed, and
the last OWNER's refusal appears at its row; a project OWNER's project key sees no key control."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.console.conftest import Watched, sign_in


@pytest.fixture
def context_options() -> dict[str, Any]:
    return {"permissions": ["clipboard-read", "clipboard-write"]}


async def test_org_owner_creates_lists_and_revokes_keys(
    watched: Watched, live_server: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    _, _, owner_key = make_org("boss@example.com")
    await sign_in(watched, owner_key)
    page = watched.page
    await page.goto(f"{live_server}/console#/settings/access")
    keys = page.locator("#keys-table tbody tr")
    await expect(keys).to_have_count(1)
    await expect(keys.first).to_contain_text("(this key)")

    await page.locator("#keys-section").get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create key")
    await dialog.get_by_label("Member's email").fill("boss@example.com")
    await dialog.get_by_label("Role cap").select_option("READER")
    await dialog.get_by_role("button", name="Create key").click()
    # no name: the API's words at the field, nothing created
    await expect(dialog.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    await expect(dialog.locator(".error-summary")).to_be_focused()
    await expect(dialog.locator(".field-error")).to_contain_text("name")
    await watched.shot("40-key-create-refused")
    await expect(keys).to_have_count(1)
    await dialog.get_by_label("Name").fill("reader for the dashboard")
    await dialog.get_by_role("button", name="Create key").click()

    panel = page.get_by_role("alertdialog", name="Key created")
    new_key = await panel.get_by_label("API key").input_value()
    assert new_key.startswith("m0-")
    await panel.get_by_role("button", name="Copy").click()
    await expect(page.locator("#status")).to_contain_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == new_key
    await watched.shot("41-key-shown-once")
    await panel.get_by_role("button", name="I have stored it").click()

    row = page.locator("#keys-table tbody tr", has_text="reader for the dashboard")
    await expect(row).to_contain_text("READER")
    assert new_key not in await page.content()
    assert new_key not in await page.evaluate("JSON.stringify([{...sessionStorage}, {...localStorage}, location.href])")
    assert await page.evaluate("indexedDB.databases().then(d => d.length)") == 0
    assert await page.context.cookies() == []
    prefix = (await row.locator("td.mono").inner_text()).rstrip("…")
    assert new_key.startswith(prefix)
    assert len(prefix) < len(new_key) - 8
    await watched.shot("42-keys")

    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {new_key}"}) as c:
        ping = await c.get("/v1/ping/")
        assert ping.status_code == 200
        assert ping.json()["role"] == "READER"
        write = await c.post("/v3/memories/add/", json={"messages": [{"role": "user", "content": "x"}], "user_id": "u"})
        assert write.status_code == 403

        await row.get_by_role("button", name="Revoke key reader for the dashboard").click()
        confirm = page.get_by_role("dialog", name="Revoke key?")
        await expect(confirm).to_contain_text("stops working")
        await confirm.get_by_role("button", name="Revoke").click()
        await expect(page.locator("#status")).to_contain_text("revoked")
        await expect(row).to_have_count(0)
        assert (await c.get("/v1/ping/")).status_code == 401
    await page.get_by_label("Show revoked keys").check()
    await expect(page.locator("#keys-table tbody tr", has_text="reader for the dashboard")).to_have_count(1)


async def test_revoking_the_signed_in_key_warns_and_signs_out(
    watched: Watched, live_server: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    org_id, project_id, owner_key = make_org("boss@example.com")
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {owner_key}"}) as c:
        body = {"name": "laptop", "project_id": project_id, "email": "boss@example.com", "scope": "org"}
        r = await c.post(f"/api/v1/orgs/organizations/{org_id}/keys", json=body)
        assert r.status_code == 201, r.text
        laptop = r.json()["key"]
    await sign_in(watched, laptop)
    page = watched.page
    await page.goto(f"{live_server}/console#/settings/access")
    own = page.locator("#keys-table tbody tr", has_text="(this key)")
    await expect(own).to_contain_text("laptop")
    await own.get_by_role("button", name="Revoke key laptop").click()
    confirm = page.get_by_role("dialog", name="Revoke key?")
    await expect(confirm).to_contain_text("the key you are signed in with")
    await confirm.get_by_role("button", name="Revoke").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text("was revoked")
    assert await page.evaluate("sessionStorage.getItem('memserver.apiKey')") is None
    async with httpx.AsyncClient(base_url=live_server) as c:
        assert (await c.get("/v1/ping/", headers={"Authorization": f"Token {laptop}"})).status_code == 401
        assert (await c.get("/v1/ping/", headers={"Authorization": f"Token {owner_key}"})).status_code == 200


async def test_members_add_change_remove_and_last_owner_is_refused(
    watched: Watched, live_server: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    org_id, project_id, owner_key = make_org("boss@example.com")
    await sign_in(watched, owner_key)
    page = watched.page
    await page.goto(f"{live_server}/console#/settings/access")
    org_table = page.locator("#org-members-table")
    project_table = page.locator("#project-members-table")
    await expect(org_table.locator("tr", has_text="boss@example.com")).to_contain_text("OWNER")

    # the org's last OWNER cannot be demoted: the API's message at the row
    await org_table.get_by_label("Role of boss@example.com").select_option("READER")
    refusal = org_table.locator("tr", has_text="boss@example.com").locator(".field-error")
    await expect(refusal).to_contain_text("last OWNER")
    await watched.shot("43-members-last-owner")

    # a project member: a new email (it joins the org as READER), changed to OWNER, removed from the project
    project_section = page.get_by_role("region", name="Project members")
    await project_section.get_by_label("New member's email").fill("ana@example.com")
    await project_section.get_by_role("button", name="Add member").click()
    await expect(project_table.locator("tr", has_text="ana@example.com")).to_contain_text("READER")
    await project_table.get_by_label("Role of ana@example.com").select_option("OWNER")
    await expect(page.locator("#status")).to_contain_text("ana@example.com is now OWNER in the project")
    await watched.shot("44-members")
    headers = {"Authorization": f"Token {owner_key}"}
    base = f"{live_server}/api/v1/orgs/organizations/{org_id}"
    async with httpx.AsyncClient(headers=headers) as c:
        members = (await c.get(f"{base}/projects/{project_id}/members/")).json()["members"]
        assert {m["email"]: m["role"] for m in members}["ana@example.com"] == "OWNER"
        await project_table.get_by_role("button", name="Remove ana@example.com from the project").click()
        await page.get_by_role("dialog", name="Remove member?").get_by_role("button", name="Remove").click()
        await expect(project_table.locator("tr", has_text="ana@example.com")).to_have_count(0)
        members = (await c.get(f"{base}/projects/{project_id}/members/")).json()["members"]
        assert [m["email"] for m in members] == ["boss@example.com"]

        # org members: one added, one made OWNER, both removed
        org_section = page.get_by_role("region", name="Organization members")
        await org_section.get_by_label("New member's email").fill("leo@example.com")
        await org_section.get_by_label("Role", exact=True).select_option("READER")
        await org_section.get_by_role("button", name="Add member").click()
        await expect(org_table.locator("tr", has_text="leo@example.com")).to_contain_text("READER")
        await org_table.get_by_label("Role of ana@example.com").select_option("OWNER")
        await expect(page.locator("#status")).to_contain_text("ana@example.com is now OWNER in the organization")
        org_members = (await c.get(f"{base}/members/")).json()["members"]
        assert {m["email"]: m["role"] for m in org_members} == {
            "boss@example.com": "OWNER",
            "ana@example.com": "OWNER",
            "leo@example.com": "READER",
        }
        for email in ("ana@example.com", "leo@example.com"):
            await org_table.get_by_role("button", name=f"Remove {email} from the organization").click()
            await page.get_by_role("dialog", name="Remove member?").get_by_role("button", name="Remove").click()
            await expect(org_table.locator("tr", has_text=email)).to_have_count(0)
        org_members = (await c.get(f"{base}/members/")).json()["members"]
        assert [m["email"] for m in org_members] == ["boss@example.com"]


async def test_project_owner_without_an_org_key_sees_no_key_controls(
    watched: Watched, live_server: str, tenant: tuple[str, str]
) -> None:
    await sign_in(watched, tenant[1])
    page = watched.page
    await page.goto(f"{live_server}/console#/settings/access")
    await expect(page.locator("#keys-note")).to_contain_text("organization-scoped key of an org OWNER")
    await expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    await expect(page.get_by_role("button", name="Revoke", exact=False)).to_have_count(0)
    await expect(page.locator("#keys-table")).to_have_count(0)
    # project members are the project OWNER's to change
    await expect(page.locator("#project-members-table select")).not_to_have_count(0)
    await watched.shot("45-access-project-owner")
