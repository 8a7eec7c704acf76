"""Settings and parameters the SDKs send that used to be kept or dropped without a word.

- `multilingual`: unset or true keeps the input language (the prompt says so already); explicit false adds one
  instruction to the project's part of the extraction prompt: memories written in English.
- PATCH of a project answers `notes` for the settings memserver keeps without effect (memory_depth,
  usecase_setting, retrieval_criteria, version) and `ignored` for unknown keys; `message` is unchanged.
- An add's parameters accepted without effect (prompt_profile_id, temporal_reasoning, structured_data_schema,
  force_add_only) are noted on its event; observation_date / observation_datetime / timezone set the
  observation date relative dates resolve against, without backdating created_at.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.api.scripted_llm import client, fact, facts, fake, llm, llm_server
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["client", "fake", "llm", "llm_server"]

IN_ENGLISH = "- Write every memory in English, translating facts stated in other languages."
ORGS = "/api/v1/orgs/organizations"


def project_path(api: httpx.Client) -> str:
    ping = api.get("/v1/ping/").json()
    return f"{ORGS}/{ping['org_id']}/projects/{ping['project_id']}/"


def wait_event(api: httpx.Client, event_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event: dict[str, Any] = api.get(f"/v1/event/{event_id}/").json()
        if event["status"] in ("SUCCEEDED", "FAILED"):
            return event
        time.sleep(0.05)
    raise AssertionError(f"event {event_id} did not finish")


def inferred_add(api: httpx.Client, llm: FakeOpenAI, text: str, **body: Any) -> tuple[dict[str, Any], str]:
    """An infer=true add the model answers with one fact; (its event, the extraction prompt's project part)."""
    llm.chat_script = lambda b: facts(fact(text))
    r = api.post("/v3/memories/add/", json={"messages": [{"role": "user", "content": text}], "user_id": "u", **body})
    assert r.status_code == 200, r.text
    event = wait_event(api, r.json()["event_id"])
    assert event["status"] == "SUCCEEDED", event
    user = str(llm.chat_requests()[-1]["body"]["messages"][-1]["content"])
    return event, user


def test_multilingual_false_writes_memories_in_english(client: httpx.Client, llm: FakeOpenAI) -> None:
    path = project_path(client)
    _, prompt = inferred_add(client, llm, "Ich wohne in Berlin.")
    assert IN_ENGLISH not in prompt  # unset: the language of the conversation
    assert client.patch(path, json={"multilingual": True}).status_code == 200
    _, prompt = inferred_add(client, llm, "J'habite à Lyon.")
    assert IN_ENGLISH not in prompt
    assert client.patch(path, json={"multilingual": False}).status_code == 200
    _, prompt = inferred_add(client, llm, "Vivo en Madrid.")
    project_part = prompt.split("\n---\n", 1)[0]  # the part every add of the project shares (prefix cache)
    assert IN_ENGLISH in project_part.splitlines()
    assert client.get(path).json()["multilingual"] is False
    assert client.patch(path, json={"multilingual": None}).status_code == 200  # back to unset
    _, prompt = inferred_add(client, llm, "Moro em Lisboa.")
    assert IN_ENGLISH not in prompt
    assert client.get(path).json()["multilingual"] is False  # unset reads false, as before


def test_patch_notes_inert_settings_and_lists_unknown_keys(client: httpx.Client) -> None:
    path = project_path(client)
    ping = client.get("/v1/ping/").json()
    plain = client.patch(path, json={"custom_instructions": "food", "org_id": ping["org_id"]})
    assert plain.content == b'{"message":"Project updated successfully"}'  # nothing to say: byte-identical
    r = client.patch(
        path,
        json={
            "memory_depth": "deep",
            "usecase_setting": "support",
            "retrieval_criteria": [{"name": "joy", "description": "happy", "weight": 3}],
            "version": "v2",
            "decay": True,
            "project_id": ping["project_id"],
            "fancy_mode": 1,
            "another": None,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Project updated successfully"
    assert body["notes"] == [
        {"setting": "memory_depth", "note": "kept; memserver has no extraction depth levels, so it has no effect"},
        {
            "setting": "usecase_setting",
            "note": "kept; memserver has no use-case presets, so it has no effect (custom_instructions and "
            "custom_categories shape what is extracted)",
        },
        {
            "setting": "retrieval_criteria",
            "note": "kept; memserver does not weight search results by retrieval criteria, so it has no effect",
        },
        {"setting": "version", "note": "kept; each client generation is served by its own routes, so it has no effect"},
    ]
    assert body["ignored"] == ["another", "fancy_mode"]
    got = client.get(path).json()
    assert (got["memory_depth"], got["usecase_setting"], got["version"]) == ("deep", "support", "v2")  # kept
    cleared = client.patch(path, json={"memory_depth": None}).json()
    assert cleared == {"message": "Project updated successfully"}  # clearing has nothing to note
    english = client.patch(path, json={"multilingual": False}).json()
    assert english["notes"] == [
        {
            "setting": "multilingual",
            "note": "infer=true adds write memories in English, translating other languages; "
            "infer=false stores as sent",
        }
    ]


def test_multilingual_true_is_qualified_on_the_local_english_embedder(api: httpx.Client) -> None:
    r = api.patch(project_path(api), json={"multilingual": True}).json()  # this server embeds with MiniLM
    assert [n["setting"] for n in r["notes"]] == ["multilingual"]
    assert "all-MiniLM-L6-v2 is English-only" in r["notes"][0]["note"]


IGNORED = {
    "prompt_profile_id": "pp_1",
    "temporal_reasoning": True,
    "structured_data_schema": {"type": "object"},
    "force_add_only": True,
}
NOTES = [
    "force_add_only is accepted without effect: the model decides ADD/UPDATE/DELETE; send infer=false to store "
    "messages verbatim",
    "prompt_profile_id is accepted without effect: memserver has no prompt profiles; use custom_instructions",
    "structured_data_schema is accepted without effect: memories are text; POST /v1/exports/ fills a JSON schema "
    "from them",
    "temporal_reasoning is accepted without effect: relative dates are always resolved against the observation date",
]


def test_ignored_add_parameters_are_noted_on_the_event(client: httpx.Client, llm: FakeOpenAI) -> None:
    event, _ = inferred_add(client, llm, "I like tea.", **IGNORED)
    assert event["metadata"]["notes"] == NOTES
    r = client.post("/v3/memories/add/", json={"messages": "I like coffee.", "user_id": "u", "infer": False, **IGNORED})
    assert r.status_code == 200, r.text
    verbatim = client.get(f"/v1/event/{r.json()['event_id']}/").json()
    assert verbatim["metadata"] == {"notes": NOTES}
    v1 = client.post(
        "/v1/memories/",
        json={"messages": [{"role": "user", "content": "I like cocoa."}], "user_id": "u", "infer": False,
              "prompt_profile_id": "pp_1"},
    )  # fmt: skip
    assert v1.status_code == 200, v1.text
    assert client.get(f"/v1/event/{v1.json()[0]['event_id']}/").json()["metadata"] == {"notes": NOTES[1:2]}
    plain = client.post("/v3/memories/add/", json={"messages": "I like milk.", "user_id": "u", "infer": False})
    assert client.get(f"/v1/event/{plain.json()['event_id']}/").json()["metadata"] is None


def observed_line(prompt: str) -> str:
    return next(line for line in prompt.splitlines() if line.startswith("Observed "))


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ({"observation_date": "2025-03-10"}, "Observed 2025-03-10 12:00 UTC (Monday):"),
        ({"observation_date": "2025-03-10", "timezone": "Europe/Paris"}, "Observed 2025-03-10 12:00 CET (Monday):"),
        ({"observation_datetime": "2025-03-30T01:30:00", "timezone": "America/New_York"},
         "Observed 2025-03-30 01:30 EDT (Sunday):"),
        ({"observation_datetime": "2025-03-30T23:30:00Z", "timezone": "Asia/Tokyo"},
         "Observed 2025-03-31 08:30 JST (Monday):"),  # an aware instant, shown in the add's zone
        ({"timestamp": 1741651200, "timezone": "Asia/Tokyo"}, "Observed 2025-03-11 09:00 JST (Tuesday):"),
        ({"timestamp": 1741651200, "observation_date": "2024-12-31"}, "Observed 2024-12-31 12:00 UTC (Tuesday):"),
    ],
)  # fmt: skip
def test_the_observation_date_is_what_relative_dates_resolve_against(
    client: httpx.Client, llm: FakeOpenAI, body: dict[str, Any], line: str
) -> None:
    event, prompt = inferred_add(client, llm, "I ran a marathon yesterday.", **body)
    assert observed_line(prompt) == line
    memory = client.get(f"/v1/memories/{event['results'][0]['id']}/").json()
    created = datetime.fromisoformat(memory["created_at"].replace("Z", "+00:00"))
    if "timestamp" in body:
        assert created == datetime.fromtimestamp(body["timestamp"], UTC)  # timestamp still backdates
    else:
        assert abs((datetime.now(UTC) - created).total_seconds()) < 120  # an observation date does not


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as "
                                        '"Europe/Paris"'),
        ({"timezone": "../../etc/passwd"}, "timezone: unknown time zone '../../etc/passwd'; use an IANA name such as "
                                            '"Europe/Paris"'),
    ],
)  # fmt: skip
def test_a_bad_time_zone_is_400(client: httpx.Client, body: dict[str, Any], error: str) -> None:
    r = client.post("/v3/memories/add/", json={"messages": "hi", "user_id": "u", "infer": False, **body})
    got = assert_error(r, 400)
    assert got["detail"] == error
    assert_error(
        client.post("/v3/memories/add/", json={"messages": "hi", "user_id": "u", "observation_date": "May"}), 400
    )
