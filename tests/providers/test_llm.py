"""The OpenAI-compatible LLM adapter, driven by the real `openai` SDK over HTTP against the fake server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import BaseModel, SecretStr

from harness.server import free_port
from memserver.config import Settings
from memserver.pipeline.prompts.extract import ExtractionReply
from memserver.pipeline.prompts.extract import build as build_prompt
from memserver.pipeline.prompts.extract import context as reply_context
from memserver.pipeline.reconcile import decide
from memserver.pipeline.types import Candidate, ExtractionRequest, InMessage
from memserver.providers.errors import (
    ProviderError,
    ProviderInvalidReply,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from memserver.providers.llm import quirks
from memserver.providers.llm.base import Usage, strip_images
from memserver.providers.llm.openai import OpenAILLM
from memserver.providers.registry import Providers, build_llm
from tests.fakes.openai_server import FakeOpenAI, approx_tokens, running

KEY = "sk-test-DO-NOT-LEAK-1234"
LOGGER = "memserver.providers.llm.openai"


class City(BaseModel):
    city: str


@pytest.fixture(autouse=True)
def _fresh_mode_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # What an endpoint refuses is remembered per process; each test starts from a clean slate.
    monkeypatch.setattr(quirks, "_QUIRKS", {})


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI()) as f:
        yield f


def make_llm(url: str, **kw: Any) -> OpenAILLM:
    opts: dict[str, Any] = {"api_key": KEY, "model": "m", "timeout_s": 5.0, "max_retries": 0, **kw}
    return OpenAILLM(base_url=url, **opts)


def formats(fake: FakeOpenAI) -> list[str]:
    return [r["body"]["response_format"]["type"] for r in fake.chat_requests()]


def assert_clean(err: ProviderError) -> None:
    """Our words only: no provider text, no key, no credentials of the URL."""
    msg = str(err)
    assert msg.startswith("the LLM ")
    for leak in (KEY, "SECRET-PROVIDER-TEXT", "scripted failure", "hunter2", "127.0.0.1"):
        assert leak not in msg


async def test_json_schema_is_asked_and_the_reply_validated(fake: FakeOpenAI) -> None:
    fake.chat_replies = ['{"city": "Berlin"}']
    llm = make_llm(fake.url)
    gen = await llm.generate([{"role": "user", "content": "Where do I live?"}], City)
    await llm.aclose()
    assert gen.value == City(city="Berlin")
    body = fake.chat_requests()[0]["body"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "City", "schema": City.model_json_schema(), "strict": False},
    }
    assert body["temperature"] == 0.0
    assert body["seed"] == 0  # deterministic settings by default
    assert body["max_tokens"] == 4096  # no budget given: the ceiling
    assert body["model"] == "m"
    assert gen.usage == Usage(calls=1, prompt_tokens=approx_tokens("Where do I live?"), completion_tokens=3)


@pytest.mark.parametrize(("status", "retries"), [(500, 1), (400, 0)])
async def test_refused_json_schema_falls_back_to_json_object_and_is_remembered(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture, status: int, retries: int
) -> None:
    fake.reject_json_schema = status
    fake.chat_replies = ['{"city": "Oslo"}', '{"city": "Rome"}']
    llm = make_llm(fake.url, max_retries=1)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first = await llm.generate([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "?"}], City)
        second = await llm.generate([{"role": "user", "content": "?"}], City)
    await llm.aclose()
    assert (first.value.city, second.value.city) == ("Oslo", "Rome")
    # 500 is retried by the SDK before we give up on json_schema; 400 is not.
    assert formats(fake) == ["json_schema"] * (1 + retries) + ["json_object", "json_object"]
    fallback = fake.chat_requests()[1 + retries]["body"]["messages"]
    assert fallback[0]["content"].startswith("Be brief.\n\nReply with one JSON object only")
    assert '"city"' in fallback[0]["content"]
    no_system = fake.chat_requests()[-1]["body"]["messages"]
    assert no_system[0]["role"] == "system"
    assert '"city"' in no_system[0]["content"]
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "json_object" in warnings[0].getMessage()
    assert first.usage.calls == 1  # the refused request produced no reply and cost nothing
    assert llm.structured_mode() == "json_object"


async def test_a_new_client_for_the_same_endpoint_remembers_the_fallback(fake: FakeOpenAI) -> None:
    fake.reject_json_schema = 400
    fake.chat_replies = ['{"city": "Oslo"}', '{"city": "Rome"}']
    await make_llm(fake.url).generate([{"role": "user", "content": "?"}], City)
    await make_llm(fake.url).generate([{"role": "user", "content": "?"}], City)
    assert formats(fake) == ["json_schema", "json_object", "json_object"]


async def test_forced_json_schema_does_not_fall_back(fake: FakeOpenAI) -> None:
    fake.reject_json_schema = 400
    llm = make_llm(fake.url, structured_output="json_schema")
    with pytest.raises(ProviderRejected) as exc:
        await llm.generate([{"role": "user", "content": "?"}], City)
    assert exc.value.status_code == 502
    assert formats(fake) == ["json_schema"]
    assert_clean(exc.value)


async def test_forced_json_object_never_asks_for_json_schema(fake: FakeOpenAI) -> None:
    fake.chat_replies = ['{"city": "Lima"}']
    gen = await make_llm(fake.url, structured_output="json_object").generate([{"role": "user", "content": "?"}], City)
    assert gen.value.city == "Lima"
    assert formats(fake) == ["json_object"]


async def test_invalid_json_is_repaired_once(fake: FakeOpenAI) -> None:
    fake.chat_replies = ["Sure! The city is Paris.", '{"city": "Paris"}']
    gen = await make_llm(fake.url).generate([{"role": "user", "content": "Where?"}], City)
    assert gen.value.city == "Paris"
    assert gen.usage.calls == 2
    repair = fake.chat_requests()[1]["body"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! The city is Paris."}
    assert repair[-1]["role"] == "user"
    assert "not valid" in repair[-1]["content"]
    assert "Invalid JSON" in repair[-1]["content"]
    sent = [approx_tokens(" ".join(m["content"] for m in r["body"]["messages"])) for r in fake.chat_requests()]
    assert gen.usage.prompt_tokens == sum(sent)


async def test_invalid_twice_is_an_invalid_reply_error(fake: FakeOpenAI) -> None:
    fake.chat_replies = ['{"town": "Paris"}', '{"town": "Paris"}', '{"city": "late"}']
    with pytest.raises(ProviderInvalidReply) as exc:
        await make_llm(fake.url).generate([{"role": "user", "content": "Where?"}], City)
    assert exc.value.status_code == 502
    assert str(exc.value) == "the LLM reply did not match the expected JSON schema after one repair attempt"
    assert len(fake.chat_requests()) == 2
    assert "city" in fake.chat_requests()[1]["body"]["messages"][-1]["content"]  # the validator named the field


async def test_fenced_and_thinking_replies_need_no_repair(fake: FakeOpenAI) -> None:
    fake.chat_replies = ['<think>hmm {"city": "x"}</think>\n```json\n{"city": "Kyiv"}\n```']
    gen = await make_llm(fake.url).generate([{"role": "user", "content": "?"}], City)
    assert gen.value.city == "Kyiv"
    assert len(fake.chat_requests()) == 1


async def test_a_hallucinated_ref_costs_no_second_call(fake: FakeOpenAI) -> None:
    """An UPDATE of a memory that was not shown still states a fact: it is kept as an ADD, with a note; a NOOP
    of one states nothing and is dropped alone."""
    req = ExtractionRequest(
        messages=[InMessage(index=0, role="user", text="I moved to Berlin.")],
        candidates=[Candidate(ref=0, id=uuid4(), text="Lives in Munich")],
        observed_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    bad = (
        '{"facts": [{"text": "Lives in Berlin", "speaker": "user", "sources": [0], "action": "UPDATE", "ref": 7},'
        ' {"text": "Likes Berlin", "speaker": "user", "sources": [0], "action": "NOOP", "ref": 8}]}'
    )
    fake.chat_replies = [bad]
    gen = await make_llm(fake.url).generate(build_prompt(req), ExtractionReply, context=reply_context(req))
    assert [(f.text, f.action, f.ref) for f in gen.value.facts] == [("Lives in Berlin", "ADD", None)]
    assert gen.notes == [
        "reply item facts[1] dropped: ref 8 is not one of the existing memories shown",
        "an UPDATE of ref 7, which was not shown, was kept as an ADD",
    ]
    assert len(fake.chat_requests()) == 1


async def test_usage_counts_fallback_and_repair(fake: FakeOpenAI) -> None:
    fake.reject_json_schema = 500
    fake.chat_replies = ["nope", '{"city": "Quito"}']
    gen = await make_llm(fake.url).generate([{"role": "user", "content": "one two three"}], City)
    answered = [r for r in fake.chat_requests() if r["body"]["response_format"]["type"] == "json_object"]
    assert len(answered) == 2
    assert gen.usage.calls == 2
    assert gen.usage.prompt_tokens == sum(
        approx_tokens(" ".join(m["content"] for m in r["body"]["messages"])) for r in answered
    )
    assert gen.usage.completion_tokens == approx_tokens("nope") + approx_tokens('{"city": "Quito"}')


async def test_missing_usage_counts_zero_tokens() -> None:
    def no_usage(body: dict[str, Any]) -> str:
        return '{"city": "Bern"}'

    class NoUsage(FakeOpenAI):
        def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            status, payload = super()._chat(body)
            payload.pop("usage")
            return status, payload

    with running(NoUsage(chat_script=no_usage)) as f:
        gen = await make_llm(f.url).generate([{"role": "user", "content": "?"}], City)
    assert gen.usage == Usage(calls=1, prompt_tokens=0, completion_tokens=0)


async def test_timeout_is_a_504_in_our_words(fake: FakeOpenAI) -> None:
    fake.hang_next, fake.hang_s = 5, 2.0
    with pytest.raises(ProviderTimeout) as exc:
        await make_llm(fake.url, timeout_s=0.3).generate([{"role": "user", "content": "?"}], City)
    assert exc.value.status_code == 504
    assert str(exc.value) == "the LLM endpoint timed out after 0.3 s"


async def test_unreachable_server_is_a_503_without_credentials() -> None:
    url = f"http://alice:hunter2@127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(ProviderUnavailable) as exc:
        await make_llm(url).generate([{"role": "user", "content": "?"}], City)
    assert exc.value.status_code == 503
    assert_clean(exc.value)


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (500, ProviderUnavailable, 503),
        (503, ProviderUnavailable, 503),
        (429, ProviderUnavailable, 503),
        (401, ProviderRejected, 502),
        (404, ProviderRejected, 502),
    ],
)
async def test_http_failures_map_to_provider_errors(
    fake: FakeOpenAI, status: int, error: type[ProviderError], code: int
) -> None:
    fake.fail_next, fake.fail_status = 10, status
    with pytest.raises(error) as exc:
        await make_llm(fake.url, max_retries=1).generate([{"role": "user", "content": "?"}], City)
    assert exc.value.status_code == code
    assert_clean(exc.value)
    # The SDK retries 429/5xx once (max_retries=1); a 500 may also be a refused json_schema (llama.cpp), so the
    # same request is tried once more in json_object mode, with its own retry.
    expected = {500: ["json_schema"] * 2 + ["json_object"] * 2, 503: ["json_schema"] * 2, 429: ["json_schema"] * 2}
    assert formats(fake) == expected.get(status, ["json_schema"])
    assert make_llm(fake.url).structured_mode() == "json_schema"  # a failure is not remembered as a refusal


async def test_transient_failure_is_retried_transparently(fake: FakeOpenAI) -> None:
    fake.fail_next = 1
    fake.chat_replies = ['{"city": "Riga"}']
    gen = await make_llm(fake.url, max_retries=2).generate([{"role": "user", "content": "?"}], City)
    assert gen.value.city == "Riga"
    assert gen.usage.calls == 1


async def test_image_parts_are_not_sent_without_vision(fake: FakeOpenAI) -> None:
    fake.chat_replies = ['{"city": "Nice"}', '{"city": "Nice"}']
    parts = [{"type": "text", "text": "Where is this?"}, {"type": "image_url", "image_url": {"url": "http://x/i.png"}}]
    await make_llm(fake.url).generate([{"role": "user", "content": parts}], City)
    await make_llm(fake.url, vision=True).generate([{"role": "user", "content": parts}], City)
    blind, seeing = (r["body"]["messages"][0]["content"] for r in fake.chat_requests())
    assert blind == [{"type": "text", "text": "Where is this?"}]
    assert seeing == parts
    assert strip_images([{"role": "user", "content": parts[1:]}]) == [{"role": "user", "content": ""}]


async def test_max_tokens_is_the_budget_under_the_ceiling(fake: FakeOpenAI) -> None:
    fake.chat_replies = ['{"city": "a"}', '{"city": "b"}', '{"city": "c"}', '{"city": "d"}']
    await make_llm(fake.url).generate([{"role": "user", "content": "?"}], City, budget=700)
    await make_llm(fake.url, max_tokens=300).generate([{"role": "user", "content": "?"}], City, budget=700)
    await make_llm(fake.url, max_tokens=300).generate([{"role": "user", "content": "?"}], City)
    await make_llm(fake.url, max_tokens=None).generate([{"role": "user", "content": "?"}], City, budget=700)
    sent = [r["body"].get("max_tokens") for r in fake.chat_requests()]
    assert sent == [700, 300, 300, None]  # None: the ceiling unset, the server's own default


async def test_registry_builds_the_llm_only_when_configured(fake: FakeOpenAI) -> None:
    assert build_llm(Settings(env="test")) is None
    settings = Settings(
        env="test",
        llm={"base_url": fake.url, "api_key": SecretStr(KEY), "model": "tiny", "structured_output": "json_object"},  # type: ignore[arg-type]
    )
    llm = build_llm(settings)
    assert isinstance(llm, OpenAILLM)
    fake.chat_replies = ['{"city": "Turin"}']
    assert (await llm.generate([{"role": "user", "content": "?"}], City)).value.city == "Turin"
    assert fake.chat_requests()[0]["body"]["model"] == "tiny"
    assert formats(fake) == ["json_object"]

    class Embedder:
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    providers = Providers(embedder=Embedder(), llm=llm)  # type: ignore[arg-type]
    await providers.aclose()
    assert llm._client.is_closed()


def test_usage_adds_up() -> None:
    total = Usage()
    total += Usage(calls=1, prompt_tokens=10, completion_tokens=2)
    total.add(Usage(calls=2, prompt_tokens=5, completion_tokens=1))
    assert total == Usage(calls=3, prompt_tokens=15, completion_tokens=3)


async def test_one_extraction_end_to_end_with_the_echo_fake() -> None:
    req = ExtractionRequest(
        messages=[
            InMessage(index=0, role="user", text="I live in Quito."),
            InMessage(index=1, role="assistant", text="Nice city!"),
            InMessage(index=2, role="user", text="I run\nmarathons."),
        ],
        candidates=[Candidate(ref=0, id=uuid4(), text="I live in Quito.")],
        observed_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    with running(FakeOpenAI(echo=True)) as f:
        gen = await make_llm(f.url).generate(build_prompt(req), ExtractionReply, context=reply_context(req))
    got = decide(req, gen.value)
    assert [(d.op, d.text, d.sources, d.target_id) for d in got] == [
        ("NOOP", "I live in Quito.", [0], req.candidates[0].id),  # already stored word for word
        ("ADD", "I run marathons.", [2], None),
    ]
    assert gen.usage.calls == 1
    assert gen.usage.prompt_tokens > 500  # the fake's estimate of the whole prompt
