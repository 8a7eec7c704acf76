"""Project settings in the console (#/settings/project): an OWNER edits every setting the API has in one form,
the API's own 400s land under their fields, and the form covers every field of ProjectSettings."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from memserver.services.project_settings import ProjectSettings
from tests.console.conftest import Watched, sign_in


def _project(live_server: str, key: str) -> dict[str, object]:
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}) as c:
        ping = c.get("/v1/ping/").json()
        r = c.get(f"/api/v1/orgs/organizations/{ping['org_id']}/projects/{ping['project_id']}/")
        assert r.status_code == 200, r.text
        out: dict[str, object] = r.json()
        out["profiles"] = c.get("/v2/profiles/settings/").json()
        out["dream"] = c.get(
            f"/api/v1/orgs/organizations/{ping['org_id']}/projects/{ping['project_id']}/dream/config/"
        ).json()
        return out


async def test_owner_edits_every_setting_and_sees_field_errors(
    watched: Watched, live_server: str, tenant: tuple[str, str]
) -> None:
    key = tenant[1]
    await sign_in(watched, key)
    page = watched.page
    await page.goto(f"{live_server}/console#/settings/project")
    form = page.locator("#settings-form")
    await expect(form).to_be_visible()
    await watched.shot("20-settings-project")

    await form.get_by_label("Instructions for user memories").fill("Only keep food preferences.")
    await form.get_by_label("What to exclude").fill("Health data.")
    await form.get_by_role("button", name="Add category").click()
    await form.get_by_label("Category 1 name").fill("food")
    await form.get_by_label("Category 1 description").fill("What the user eats")
    await form.get_by_role("button", name="Add category").click()
    await form.get_by_label("Category 2 name").fill("travel")
    await form.get_by_label("Build the graph").check()
    await form.get_by_label("Recency decay").check()
    await form.get_by_label("Memory depth").fill("deep")
    await form.get_by_label("Generate user profiles").check()
    schema = '{"type": "object", "properties": {"diet": {"type": "string", "description": "What the user eats"}}}'
    await form.get_by_label("user profile schema (JSON Schema)").fill(schema)
    await form.get_by_label("Synthesis: distil recurring threads into pattern memories").check()
    await form.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#status")).to_contain_text("Saved:")

    stored = _project(live_server, key)
    assert stored["custom_instructions"] == "Only keep food preferences."
    assert stored["exclusion_prompt"] == "Health data."
    assert stored["custom_categories"] == [{"food": "What the user eats"}, "travel"]
    assert stored["enable_graph"] is True
    assert stored["decay"] is True
    assert stored["memory_depth"] == "deep"
    assert stored["agent_custom_instructions"] is None  # untouched fields are not sent
    profiles = stored["profiles"]
    assert isinstance(profiles, dict)
    assert profiles["enabled"] is True
    assert profiles["entities"]["user"]["schema"]["properties"] == {
        "diet": {"type": "string", "description": "What the user eats"}
    }
    dream = stored["dream"]
    assert isinstance(dream, dict)
    assert dream["reflection_enabled"] is True

    # a reload shows what was saved
    await page.reload()
    form = page.locator("#settings-form")
    await expect(form.get_by_label("Instructions for user memories")).to_have_value("Only keep food preferences.")
    await expect(form.get_by_label("Category 1 name")).to_have_value("food")
    await expect(form.get_by_label("Category 2 name")).to_have_value("travel")
    await expect(form.get_by_label("Build the graph")).to_be_checked()
    await expect(form.get_by_label("Recency decay")).to_be_checked()
    await expect(form.get_by_label("Generate user profiles")).to_be_checked()

    # a category over the API's limit: the API's words under Categories, the summary focused, nothing saved
    await form.get_by_label("Category 2 description").fill("x" * 501)
    await form.get_by_label("Instructions for user memories").fill("Changed but refused with the rest.")
    await form.get_by_role("button", name="Save settings").click()
    categories = form.locator("#set-custom_categories")
    await expect(categories).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#set-custom_categories-error")).to_contain_text("longer than 500 characters")
    described = await categories.get_attribute("aria-describedby") or ""
    assert "set-custom_categories-error" in described.split()
    summary = form.locator(".error-summary")
    await expect(summary).to_be_focused()
    await expect(summary).to_contain_text("Nothing was saved")
    await expect(summary.get_by_role("link")).to_contain_text("longer than 500 characters")
    await watched.shot("21-settings-field-error")
    again = _project(live_server, key)
    assert again["custom_instructions"] == "Only keep food preferences."
    assert again["custom_categories"] == [{"food": "What the user eats"}, "travel"]

    # back to the defaults: empty text is null, "the 15 default categories" is null
    await form.get_by_label("Category 2 description").fill("")
    await form.get_by_label("Instructions for user memories").fill("")
    await form.get_by_label("The 15 default categories").check()
    await form.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#status")).to_contain_text("Saved:")
    reset = _project(live_server, key)
    assert reset["custom_instructions"] is None
    assert reset["custom_categories"] is None


async def test_settings_form_covers_every_project_setting(
    watched: Watched, live_server: str, tenant: tuple[str, str]
) -> None:
    await sign_in(watched, tenant[1])
    page = watched.page
    await page.goto(f"{live_server}/console#/settings/project")
    await expect(page.locator("#settings-form")).to_be_visible()
    on_page = set(
        await page.evaluate("() => [...document.querySelectorAll('[data-setting]')].map(e => e.dataset.setting)")
    )
    project_level = {s for s in on_page if "." not in s} - {"name", "description"}
    assert project_level == set(ProjectSettings.model_fields)
    assert "profiles.enabled" in on_page
    assert "dream.reflection_enabled" in on_page
