"""Profiles work as soon as they are enabled: a project that never chose a schema gets memserver's default user
schema (shown by the settings, never stored: `schema: null` returns to it); and a failed generation says why
(`error`, which the TypeScript client's ProfileResponse reads). Scripted LLM: tests/fakes/platform_llm.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from memserver.domain.json_schema import check_schema
from memserver.domain.profile_schema import DEFAULT_USER_SCHEMA
from tests.api.helpers import add_verbatim, token_client

CUSTOM = {"type": "object", "properties": {"hobbies": {"type": "array", "description": "Hobbies"}}}


@pytest.fixture
def llm_api(llm_live: tuple[Any, Any], make_tenant: Callable[[], tuple[str, str]]) -> Iterator[httpx.Client]:
    with token_client(llm_live[0].url, make_tenant()[1]) as c:
        yield c


def wait_for_profile(api: httpx.Client, user: str, status: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        profile: dict[str, Any] = api.get(f"/v2/entities/user/{user}/profile/").json()
        if profile["status"] == status:
            return profile
        time.sleep(0.2)
    raise AssertionError(f"the profile of {user} never became {status}: {profile}")


def test_the_default_schema_is_a_valid_profile_schema() -> None:
    assert check_schema(DEFAULT_USER_SCHEMA, descriptions=True) is DEFAULT_USER_SCHEMA


def test_enabling_without_a_schema_then_generating_works(llm_api: httpx.Client) -> None:
    add_verbatim(llm_api, "Alice lives in Lyon.", "Alice's sister is Chloé.", user_id="alice")
    settings = llm_api.post("/v2/profiles/settings/", json={"enabled": True})
    assert settings.status_code == 200, settings.text
    job = llm_api.post("/v2/profiles/jobs/", json={"operation": "trigger", "entity_id": "alice"})
    assert job.status_code == 202, job.text
    profile = wait_for_profile(llm_api, "alice", "succeeded")
    texts = ["Alice lives in Lyon.", "Alice's sister is Chloé."]
    assert profile["profile"]["location"] == texts[0]
    assert profile["profile"]["interests"] == texts
    assert profile["profile"]["relationships"] == [{"name": t, "relation": t} for t in texts]  # objects, per schema
    assert set(profile["profile"]) == set(DEFAULT_USER_SCHEMA["properties"])  # pruned to the schema
    assert profile["error"] is None


def test_the_settings_show_the_schema_that_applies(llm_api: httpx.Client) -> None:
    fresh = llm_api.get("/v2/profiles/settings/").json()
    assert fresh["entities"]["user"] == {
        "schema": DEFAULT_USER_SCHEMA,
        "custom_instructions": None,
        "schema_source": "default",
    }
    assert fresh["entities"]["agent"] == {"schema": None, "custom_instructions": None, "schema_source": None}
    custom = llm_api.post("/v2/profiles/settings/", json={"entities": {"user": {"schema": CUSTOM}}}).json()
    assert (custom["entities"]["user"]["schema"], custom["entities"]["user"]["schema_source"]) == (CUSTOM, "custom")
    reset = llm_api.post("/v2/profiles/settings/", json={"schema": None}).json()  # flat alias of the user's
    assert (reset["entities"]["user"]["schema"], reset["entities"]["user"]["schema_source"]) == (
        DEFAULT_USER_SCHEMA,
        "default",
    )


def test_agents_still_need_a_schema_and_disabled_profiles_say_how(llm_api: httpx.Client) -> None:
    add_verbatim(llm_api, "The helper answers in French.", agent_id="helper")
    off = llm_api.post("/v2/profiles/jobs/", json={"operation": "trigger", "entity_id": "helper"})
    assert off.status_code == 400
    assert off.json()["error"] == {
        "code": "profiles_not_enabled",
        "message": 'profiles are not enabled for this project: POST /v2/profiles/settings/ with {"enabled": true}',
    }
    llm_api.post("/v2/profiles/settings/", json={"enabled": True})
    agent = llm_api.post(
        "/v2/profiles/jobs/", json={"operation": "trigger", "entity_type": "agent", "entity_id": "helper"}
    )
    assert agent.status_code == 400
    assert agent.json()["error"]["message"] == (
        'agent profiles need a schema: POST /v2/profiles/settings/ with {"entities": {"agent": {"schema": ...}}}'
    )


def test_a_failed_profile_says_why(llm_api: httpx.Client) -> None:
    add_verbatim(llm_api, "Bob plays cello.", user_id="bob")
    llm_api.post(
        "/v2/profiles/settings/",
        json={"enabled": True, "entities": {"user": {"custom_instructions": "UNREADABLE"}}},
    )
    assert llm_api.post("/v2/profiles/jobs/", json={"operation": "trigger", "entity_id": "bob"}).status_code == 202
    failed = wait_for_profile(llm_api, "bob", "failed")
    assert failed["profile"] == {}
    assert isinstance(failed["error"], str), failed
    assert "could not be read" in failed["error"] or "JSON" in failed["error"], failed["error"]
    llm_api.post("/v2/profiles/settings/", json={"entities": {"user": {"custom_instructions": None}}})
    assert llm_api.post("/v2/profiles/jobs/", json={"operation": "trigger", "entity_id": "bob"}).status_code == 202
    fixed = wait_for_profile(llm_api, "bob", "succeeded")
    assert fixed["error"] is None
