"""The corpus of real-shaped imperfect replies (`reply_corpus/`): one file per defect class that small local
models produce, with the parse expected next to it. Each reply goes through the real adapter (the `openai`
SDK over HTTP, the fake server answering it) and the extraction reply model of the request it answers.

Files: `<class>.reply.txt` is the raw message content; `<class>.expected.json` says which request of
`requests.json` it answers, the rest of the completion (`finish_reason`, `reasoning_content`, `reasoning`), the
reply to a second call if one is expected (`then`), and what must come out: the facts, the notes, the number
of calls and the verdict (`usable`; `cut`: one continuation; `retry`: cut before any complete item, asked once
more; `nothing_usable`: one repair round, then the add fails).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from memserver.pipeline.prompts import extract
from memserver.providers.errors import ProviderInvalidReply
from memserver.providers.llm import quirks
from memserver.providers.llm.openai import OpenAILLM
from tests.fakes.openai_server import FakeOpenAI, running
from tests.providers.reply_corpus import CLASSES, CORPUS, load, request, scripted


def as_expected(fact: Any) -> dict[str, Any]:
    out = fact.model_dump(include={"text", "speaker", "sources", "categories", "action", "ref"})
    out |= {k: v for k in ("event_start", "event_end") if (v := getattr(fact, k, None)) is not None}
    if hasattr(fact, "relations"):
        out["relations"] = [
            {
                "source": r.source,
                "relationship": r.relationship,
                "target": r.target,
                "replaces": r.replaces,
                "valid_from": r.valid_from.isoformat() if r.valid_from else None,
            }
            for r in fact.relations
        ]
    return out


@pytest.fixture(autouse=True)
def _fresh_quirks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quirks, "_QUIRKS", {})


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI()) as f:
        yield f


def test_the_corpus_covers_every_defect_class() -> None:
    assert len(CLASSES) >= 25
    for name in CLASSES:
        assert (CORPUS / f"{name}.reply.txt").exists(), name
    verdicts = {load(n)[1]["verdict"] for n in CLASSES}
    assert verdicts == {"usable", "cut", "retry", "nothing_usable"}


@pytest.mark.parametrize("name", CLASSES)
async def test_each_imperfect_reply_is_understood(fake: FakeOpenAI, name: str) -> None:
    text, expected = load(name)
    req = request(expected["request"])
    fake.requests.clear()
    fake.chat_replies[:] = scripted(text, expected)
    llm = OpenAILLM(base_url=fake.url, api_key="sk-test", model=f"corpus-{name}", timeout_s=5, max_retries=0)
    try:
        if expected["verdict"] == "nothing_usable":
            with pytest.raises(ProviderInvalidReply):
                await llm.generate(extract.build(req), extract.reply_model(req), context=extract.context(req))
            assert len(fake.chat_requests()) == expected["calls"]
            return
        gen = await llm.generate(
            extract.build(req), extract.reply_model(req), context=extract.context(req), budget=extract.budget(req)
        )
    finally:
        await llm.aclose()
    assert [as_expected(f) for f in gen.value.facts] == expected["facts"]
    assert gen.notes == expected["notes"]
    assert gen.usage.calls == len(fake.chat_requests()) == expected["calls"]
    assert fake.chat_replies == []
    for stored in (f.text for f in gen.value.facts):  # nothing Postgres would refuse reaches the memories
        assert "\x00" not in stored
        stored.encode("utf-8")


async def test_a_continuation_shows_the_complete_items_and_asks_for_the_rest(fake: FakeOpenAI) -> None:
    text, expected = load("truncated")
    req = request("chat")
    fake.requests.clear()
    fake.chat_replies[:] = scripted(text, expected)
    llm = OpenAILLM(base_url=fake.url, api_key="sk-test", model="corpus-continuation", timeout_s=5, max_retries=0)
    await llm.generate(extract.build(req), extract.reply_model(req), context=extract.context(req), budget=1000)
    await llm.aclose()
    first, second = (r["body"] for r in fake.chat_requests())
    assert second["messages"][: len(first["messages"])] == first["messages"]  # the same prefix: served from cache
    shown, ask = second["messages"][len(first["messages"]) :]
    assert shown["role"] == "assistant"
    assert [f["text"] for f in json.loads(shown["content"])["facts"]] == ["Has a dog named Rex"]
    assert ask["role"] == "user"
    assert "cut off after 1 facts" in ask["content"]
    assert first["max_tokens"] == 1000
    assert second["max_tokens"] == 4096  # the ceiling
