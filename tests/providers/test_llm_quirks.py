"""Servers and models as they are: what an OpenAI-compatible endpoint refuses is found out once, the request is
sent again without it, and a new client of the same endpoint sends the fixed form straight away. Reasoning is
stripped and never kept; the prefix-cache counts are read. Against the fake server, over HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from memserver.providers.errors import ProviderRejected, ProviderUnavailable
from memserver.providers.llm import quirks
from memserver.providers.llm.openai import REASONING_ALLOWANCE, OpenAILLM
from tests.fakes.openai_server import FakeOpenAI, approx_tokens, running

LOGGER = "memserver.providers.llm.openai"
PROMPT = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Where do I live?"}]


class City(BaseModel):
    city: str


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quirks, "_QUIRKS", {})


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI()) as f:
        yield f


def llm(fake: FakeOpenAI, **kw: Any) -> OpenAILLM:
    return OpenAILLM(base_url=fake.url, **{"api_key": "sk-x", "model": "m", "timeout_s": 5, "max_retries": 0, **kw})


def bodies(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r["body"] for r in fake.chat_requests()]


@pytest.mark.parametrize(
    "refusal",
    [
        (400, "System role not supported"),  # vLLM with a Gemma 2 template
        (500, "Conversation roles must alternate user/assistant/user/assistant/..."),  # sglang / Jinja
    ],
)
async def test_a_refused_system_role_is_merged_into_the_first_user_message(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture, refusal: tuple[int, str]
) -> None:
    fake.refuse_system_role = refusal
    fake.chat_replies = ['{"city": "Oslo"}', '{"city": "Rome"}']
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first = await llm(fake).generate(PROMPT, City)
    second = await llm(fake).generate(PROMPT, City)  # a new client of the same endpoint
    assert (first.value.city, second.value.city) == ("Oslo", "Rome")
    refused, retried, direct = bodies(fake)
    assert [m["role"] for m in refused["messages"]] == ["system", "user"]
    assert retried["messages"] == [{"role": "user", "content": "Answer in JSON.\n\nWhere do I live?"}]
    assert retried["response_format"]["type"] == "json_schema"  # nothing else was given up
    assert direct["messages"] == retried["messages"]
    assert first.usage.calls == 1
    assert ["system role" in r.getMessage() for r in caplog.records if r.name == LOGGER] == [True]
    assert refusal[1] not in caplog.text  # the provider's text stays out of the logs too


async def test_a_server_that_fails_without_a_word_gets_one_merged_try_after_both_modes(fake: FakeOpenAI) -> None:
    """mistral.rs answers a Gemma 2 request with 500 and no body: json_schema, then json_object, then the merge."""
    fake.refuse_system_role = (500, "")
    fake.chat_replies = ['{"city": "Oslo"}', '{"city": "Rome"}']
    assert (await llm(fake).generate(PROMPT, City)).value.city == "Oslo"
    assert (await llm(fake).generate(PROMPT, City)).value.city == "Rome"
    sent = [(b.get("response_format", {}).get("type"), [m["role"] for m in b["messages"]]) for b in bodies(fake)]
    assert sent == [
        ("json_schema", ["system", "user"]),
        ("json_object", ["system", "user"]),
        ("json_object", ["user"]),
        ("json_object", ["user"]),  # remembered: no refused request any more
    ]


async def test_an_unknown_failure_is_not_taken_for_a_refusal(fake: FakeOpenAI) -> None:
    """A 400 that names nothing we know (a context length error) fails as it is: the system role stays."""
    fake.fail_next, fake.fail_status = 5, 400
    with pytest.raises(ProviderRejected):
        await llm(fake, structured_output="json_object").generate(PROMPT, City)
    assert len(fake.chat_requests()) == 1
    assert quirks._QUIRKS == {}


@pytest.mark.parametrize(
    ("param", "message", "kept"),
    [
        ("temperature", "Unsupported value: 'temperature' does not support 0 with this model.", {"seed", "max_tokens"}),
        ("seed", "Unrecognized request argument supplied: seed", {"temperature", "max_tokens"}),
        (
            "max_tokens",
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            {"temperature", "seed", "max_completion_tokens"},
        ),
    ],
)
async def test_a_refused_parameter_is_no_longer_sent(
    fake: FakeOpenAI, param: str, message: str, kept: set[str]
) -> None:
    fake.refuse_param = {param: (400, message)}
    fake.chat_replies = ['{"city": "Oslo"}', '{"city": "Rome"}']
    await llm(fake).generate(PROMPT, City, budget=600)
    await llm(fake).generate(PROMPT, City, budget=600)
    refused, retried, direct = bodies(fake)
    assert param in refused
    for body in (retried, direct):
        assert param not in body
        assert kept <= body.keys()
    if "max_completion_tokens" in kept:
        assert direct["max_completion_tokens"] == 600


async def test_lm_studio_refusing_json_object_gets_plain_text_with_the_schema(fake: FakeOpenAI) -> None:
    fake.reject_json_schema = 400
    fake.refuse_format = {"json_object": (400, "'response_format.type' must be 'json_schema' or 'text'")}
    fake.chat_replies = ['Sure: {"city": "Oslo"}', '{"city": "Rome"}']
    client = llm(fake)
    assert (await client.generate(PROMPT, City)).value.city == "Oslo"
    assert client.structured_mode() == "text"
    assert (await llm(fake).generate(PROMPT, City)).value.city == "Rome"
    formats = [b.get("response_format", {}).get("type") for b in bodies(fake)]
    assert formats == ["json_schema", "json_object", None, None]
    assert '"city"' in bodies(fake)[-1]["messages"][0]["content"]  # the schema is in the instructions


async def test_reasoning_is_stripped_never_kept_and_budgets_grow_for_it(fake: FakeOpenAI) -> None:
    secret = "The user surely lives in Oslo, I think {maybe}"
    fake.chat_replies = [
        {"content": '{"city": "Oslo"}', "reasoning_content": secret},
        '<think>Rome? {"city": "Paris"}</think>{"city": "Rome"}',
        '{"city": "Lima"}',
    ]
    first = await llm(fake).generate(PROMPT, City, budget=600)
    second = await llm(fake).generate(PROMPT, City, budget=600)
    assert (first.value.city, second.value.city) == ("Oslo", "Rome")
    assert secret not in json.dumps(first.notes)
    # the endpoint reasons: every budget now has room for it
    await llm(fake).generate(PROMPT, City, budget=600)
    assert [b["max_tokens"] for b in bodies(fake)] == [600, 600 + REASONING_ALLOWANCE, 600 + REASONING_ALLOWANCE]
    assert quirks._QUIRKS[(fake.url + "/", "m")].reasons


async def test_cached_prompt_tokens_are_counted(fake: FakeOpenAI) -> None:
    fake.prefix_cache = True
    fake.chat_replies = ['{"city": "Oslo"}', '{"city": "Rome"}']
    first = await llm(fake).generate(PROMPT, City)
    second = await llm(fake).generate([*PROMPT[:1], {"role": "user", "content": "Where do I work?"}], City)
    assert first.usage.cached_prompt_tokens == 0
    assert second.usage.cached_prompt_tokens == approx_tokens("Answer in JSON. Where do I")
    assert second.usage.cached_prompt_tokens < second.usage.prompt_tokens


async def test_llama_cpp_timings_count_as_cached_tokens() -> None:
    class LlamaCpp(FakeOpenAI):
        def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            status, payload = super()._chat(body)
            return status, {**payload, "timings": {"cache_n": 42, "prompt_n": 7}}

    with running(LlamaCpp(chat_replies=['{"city": "Oslo"}'])) as f:
        gen = await llm(f).generate(PROMPT, City)
    assert gen.usage.cached_prompt_tokens == 42


async def test_forced_modes_override_what_was_learned(fake: FakeOpenAI) -> None:
    fake.chat_replies = ['{"city": "Oslo"}', '{"city": "Rome"}']
    await llm(fake, system_role="merge", structured_output="json_object").generate(PROMPT, City)
    await llm(fake, temperature=None, seed=None, max_tokens=None).generate(PROMPT, City)
    merged, plain = bodies(fake)
    assert [m["role"] for m in merged["messages"]] == ["user"]
    assert merged["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in plain["messages"]] == ["system", "user"]  # forcing did not teach the endpoint
    assert not {"temperature", "seed", "max_tokens"} & plain.keys()


async def test_a_server_down_is_not_remembered_as_a_refusal(fake: FakeOpenAI) -> None:
    fake.fail_next = 10
    with pytest.raises(ProviderUnavailable):
        await llm(fake).generate(PROMPT, City)
    assert llm(fake).structured_mode() == "json_schema"
    assert quirks._QUIRKS == {}
