"""Project settings: GET (any `fields`, always the whole object) and PATCH of every setting the SDKs send;
`services.project_settings.project_settings` / `effective` (what the inference pipeline reads); and `decay`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from memserver.services import project_settings
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim

ORGS = "/api/v1/orgs/organizations"
EVERY_SETTING: dict[str, Any] = {
    "custom_instructions": "Only remember food preferences.",
    "agent_custom_instructions": "Remember the agent's promises.",
    "custom_categories": [{"food": "What the user eats"}, {"travel": "Trips"}],
    "enable_graph": True,
    "multilingual": True,
    "memory_depth": "deep",
    "usecase_setting": "customer support",
    "decay": True,
    "retrieval_criteria": [{"name": "joy", "description": "happy things", "weight": 3}],
    "version": "v2",
    "inclusion_prompt": "include food",
    "exclusion_prompt": "exclude weather",
}


def project_path(api: httpx.Client) -> str:
    ping = api.get("/v1/ping/").json()
    return f"{ORGS}/{ping['org_id']}/projects/{ping['project_id']}/"


def test_defaults_then_every_setting_round_trips(api: httpx.Client) -> None:
    path = project_path(api)
    before = api.get(path + "?").json()  # TS always appends "?"
    assert before["custom_instructions"] is None
    assert before["custom_categories"] is None
    assert before["decay"] is False
    assert before["multilingual"] is False
    ping = api.get("/v1/ping/").json()
    echo = {"org_id": ping["org_id"], "project_id": ping["project_id"]}  # what the SDKs echo
    r = api.patch(path, json={**EVERY_SETTING, **echo, "unknown_flag": 1})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Project updated successfully"
    assert [n["setting"] for n in r.json()["notes"]] == [  # kept without effect, or qualified (MiniLM)
        "memory_depth",
        "usecase_setting",
        "retrieval_criteria",
        "version",
        "multilingual",
    ]
    assert r.json()["ignored"] == ["unknown_flag"]
    got = api.get(path, params=[("fields", "custom_instructions"), ("fields", "custom_categories")]).json()
    for key, value in EVERY_SETTING.items():
        assert got[key] == value, key
    assert "unknown_flag" not in got


def test_null_restores_the_default_and_empty_values_clear(api: httpx.Client) -> None:
    path = project_path(api)
    assert api.patch(path, json=EVERY_SETTING).is_success
    assert api.patch(
        path, json={"custom_instructions": "", "custom_categories": [], "memory_depth": None, "decay": None}
    ).is_success
    got = api.get(path).json()
    assert got["custom_instructions"] == ""
    assert got["custom_categories"] == []
    assert got["memory_depth"] is None
    assert got["decay"] is False
    assert got["multilingual"] is True  # untouched
    assert api.patch(path, json={"custom_categories": ["food", "travel"]}).is_success
    assert api.get(path).json()["custom_categories"] == ["food", "travel"]
    assert api.patch(path, json={}).is_success  # TS may send {}


@pytest.mark.parametrize(
    "body",
    [
        {"decay": "yes"},
        {"multilingual": 1},
        {"custom_categories": "food"},
        {"custom_instructions": 5},
        {"custom_categories": [1, 2]},
    ],
)
def test_wrong_types_are_400_message(api: httpx.Client, body: dict[str, Any]) -> None:
    r = api.patch(project_path(api), json=body)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == r.json()["detail"]


def test_settings_stay_in_their_project(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    path = project_path(api)
    _, key = make_tenant()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}) as other:
        assert other.patch(path, json={"custom_instructions": "pwned"}).status_code == 403
        assert other.get(path).status_code == 403
        assert other.patch(project_path(other), json={"custom_instructions": "mine"}).is_success
    assert api.get(path).json()["custom_instructions"] is None


async def test_the_pipeline_reads_typed_settings_and_request_values_win(
    api: httpx.Client, tenant: tuple[str, str], db: Database
) -> None:
    path = project_path(api)
    async with httpx.AsyncClient(base_url=api.base_url, headers=api.headers) as client:
        assert (await client.patch(path, json=EVERY_SETTING)).is_success
    s = await project_settings.project_settings(db, uuid.UUID(tenant[0]))
    assert s.custom_instructions == "Only remember food preferences."
    assert s.category_map() == {"food": "What the user eats", "travel": "Trips"}
    assert s.decay is True
    run = project_settings.effective(s, custom_instructions="Remember everything.", custom_categories=None)
    assert run.custom_instructions == "Remember everything."
    assert run.custom_categories == s.custom_categories
    unknown = await project_settings.project_settings(db, uuid.uuid4())
    assert unknown == project_settings.ProjectSettings()


def _search(api: httpx.Client, query: str) -> list[dict[str, Any]]:
    r = api.post("/v3/memories/search/", json={"query": query, "filters": {"user_id": "alice"}, "threshold": 0})
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def test_decay_weighs_recency_and_reads_keeping_scores_in_0_1(api: httpx.Client) -> None:
    two_years_ago = int(time.time()) - 2 * 365 * 86400
    old = add_verbatim(api, "Alice enjoys green tea.", timestamp=two_years_ago)[0]
    new = add_verbatim(api, "Alice sometimes drinks green tea with friends.")[0]
    plain = _search(api, "Alice enjoys green tea.")
    assert [h["id"] for h in plain] == [old, new]  # without decay the closer text wins
    assert all("decay" not in h["score_breakdown"] for h in plain)
    assert api.patch(project_path(api), json={"decay": True}).is_success
    decayed = _search(api, "Alice enjoys green tea.")
    assert [h["id"] for h in decayed] == [new, old]  # with decay the fresh memory wins
    by_id = {h["id"]: h for h in decayed}
    raw = {h["id"]: h["score"] for h in plain}
    assert by_id[old]["score_breakdown"]["decay"] == pytest.approx(0.3, abs=0.01)
    assert by_id[old]["score"] == pytest.approx(raw[old] * 0.3, abs=0.01)
    first = by_id[new]["score_breakdown"]["decay"]
    assert 1.15 < first <= 1.2
    for h in decayed:
        assert 0 < h["score"] <= 1
    for _ in range(3):
        again = _search(api, "Alice enjoys green tea.")
    assert {h["id"]: h for h in again}[new]["score_breakdown"]["decay"] > first  # recent reads count
    assert api.patch(project_path(api), json={"decay": False}).is_success
    assert [h["id"] for h in _search(api, "Alice enjoys green tea.")] == [old, new]


def test_an_add_gets_the_project_defaults_where_it_gave_none() -> None:
    from memserver.domain.add import AddInput

    s = project_settings.ProjectSettings(
        custom_instructions="project rules",
        custom_categories=[{"food": "What the user eats"}, "travel"],
        inclusion_prompt="only food",
        exclusion_prompt="",
    )
    inp = AddInput.model_validate({"messages": [{"role": "user", "content": "hi"}], "user_id": "u"})
    got = project_settings.with_project_defaults(s, inp)
    assert got.custom_instructions == "project rules"
    assert got.custom_categories == {"food": "What the user eats", "travel": "travel"}
    assert (got.includes, got.excludes) == ("only food", None)
    own = inp.model_copy(update={"custom_instructions": "request rules", "custom_categories": {"x": "y"}})
    kept = project_settings.with_project_defaults(s, own)
    assert (kept.custom_instructions, kept.custom_categories) == ("request rules", {"x": "y"})
    assert project_settings.with_project_defaults(project_settings.ProjectSettings(), inp) is inp


# -- field-keyed errors (memserver extension: a client shows each error at its field) -------------------------
def test_one_bad_setting_keeps_its_message_and_names_its_field(api: httpx.Client) -> None:
    r = api.patch(project_path(api), json={"decay": "yes", "custom_instructions": "fine"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == body["detail"] == "decay must be true or false"  # the text clients saw before
    assert body["errors"] == {"decay": ["decay must be true or false"]}
    assert api.get(project_path(api)).json()["custom_instructions"] is None  # nothing of the body was applied


def test_every_bad_setting_is_named_at_once_and_nothing_is_saved(api: httpx.Client) -> None:
    path = project_path(api)
    body = {
        "multilingual": 1,
        "custom_instructions": "kept out",
        "custom_categories": [{f"c{i}": "x"} for i in range(51)],
        "retrieval_criteria": "joy",
        "name": "",
        "version": 2,
    }
    r = api.patch(path, json=body)
    assert r.status_code == 400, r.text
    got = r.json()
    assert got["message"] == "multilingual must be true or false"  # the first, as before
    assert set(got["errors"]) == {"multilingual", "custom_categories", "retrieval_criteria", "name", "version"}
    assert got["errors"]["retrieval_criteria"] == ["retrieval_criteria must be a list"]
    assert got["errors"]["version"] == ["version must be a string"]
    assert got["errors"]["name"] == ["name must not be empty"]
    assert "50" in got["errors"]["custom_categories"][0]
    assert all(isinstance(v, list) and len(v) == 1 for v in got["errors"].values())
    after = api.get(path).json()
    assert (after["multilingual"], after["custom_instructions"], after["custom_categories"]) == (False, None, None)


def test_profile_settings_errors_name_the_nested_field(api: httpx.Client) -> None:
    r = api.post("/v2/profiles/settings/", json={"entities": {"user": {"schema": {"type": "string"}}}})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"]["code"] == "invalid_schema"  # the Platform's shape, unchanged
    assert body["errors"] == {"entities.user.schema": [body["detail"]]}
    r = api.post("/v2/profiles/settings/", json={"enabled": "yes"})
    assert r.json()["errors"] == {"enabled": ["enabled must be true or false"]}
    r = api.post("/v2/profiles/settings/", json={"entities": {"user": {"custom_instructions": 3}}})
    assert r.json()["errors"] == {"entities.user.custom_instructions": ["custom_instructions must be a string"]}
