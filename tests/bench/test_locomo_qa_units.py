"""The parts of `bench.locomo_qa` a score depends on, without servers: Mem0's ingest plan, its prompts kept byte for
byte, the judge's label read from imperfect replies, F1 / BLEU-1, the append-only logs surviving a torn line, and
the answer and judge calls on a server that refuses a lone system message or JSON mode."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from bench.locomo_data import DEFAULT_DATA
from bench.locomo_qa import metrics, plan, prompts
from bench.locomo_qa.llm import Model, parse_label, strip_reasoning
from bench.locomo_qa.store import RunDir
from tests.fakes.openai_server import FakeOpenAI, running

ROOT = Path(__file__).resolve().parents[2]


def test_plan_mirrors_each_session_into_both_speakers_namespaces_two_messages_per_add() -> None:
    data, _ = plan.load(DEFAULT_DATA)
    p = plan.build(data, conversations=None, categories=(1, 2, 3, 4), max_adds=None, max_questions=None)
    # every session, both namespaces, batches of 2; categories 1-4 of the five conversations
    assert len(p.adds) == 2828
    assert len(p.questions) == 762
    a, b = p.adds[0], p.adds[1]
    assert (a.key, a.user_id, b.key, b.user_id) == ("conv-26:A:0", "Caroline_0", "conv-26:B:0", "Melanie_0")
    assert [m["role"] for m in a.messages] == ["user", "assistant"]  # Caroline's turn is her namespace's user
    assert [m["role"] for m in b.messages] == ["assistant", "user"]
    assert [m["content"] for m in a.messages] == [m["content"] for m in b.messages]
    assert a.messages[0]["content"].startswith("Caroline: Hey Mel!")
    assert (a.date, a.ts) == ("1:56 pm on 8 May, 2023", 1683554160)  # 2023-05-08 13:56 UTC
    for ns in p.namespaces().values():  # each namespace numbered in order, one session after another
        assert [x.index for x in ns] == list(range(len(ns)))
        assert [x.session for x in ns] == sorted(x.session for x in ns)


def test_a_slice_cuts_each_conversation_and_category_5_gets_the_not_mentioned_gold() -> None:
    data, _ = plan.load(DEFAULT_DATA)
    p = plan.build(data, conversations=["conv-26", "conv-30"], categories=(2, 5), max_adds=4, max_questions=3)
    assert [a.key for a in p.adds] == [f"{c}:{ns}:{i}" for c in ("conv-26", "conv-30") for i in (0, 1) for ns in "AB"]
    assert len(p.questions) == 6
    assert {q.category for q in p.questions} <= {2, 5}
    fives = [q for q in p.questions if q.category == 5]
    assert all(q.gold == plan.ADVERSARIAL_GOLD for q in fives)
    with pytest.raises(SystemExit, match="conv-99"):
        plan.build(data, conversations=["conv-99"], categories=(1,), max_adds=None, max_questions=None)


def test_mem0_texts_are_byte_for_byte_those_listed_in_their_readme() -> None:
    folder = ROOT / "bench" / "locomo_qa" / "mem0_eval"
    listed = dict(re.findall(r"`(\w+\.txt)` \|.*\| `([0-9a-f]{64})` \|", (folder / "README.md").read_text()))
    assert len(listed) == 3
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_strict_judge_differs_from_j_only_where_j_says_be_generous() -> None:
    mem0, strict = prompts.JUDGE_PROMPTS["mem0"], prompts.JUDGE_PROMPTS["strict"]
    assert mem0.count("be generous") == 2
    assert "be generous" not in strict
    assert "CORRECT only if it states the gold fact and nothing that contradicts it" in strict
    kept = [line for line in mem0.splitlines() if "be generous" not in line]
    assert all(line in strict.splitlines() for line in kept)
    filled = prompts.judge_prompt("strict", "When?", "7 May 2023", "On 7 May 2023")
    assert "Question: When?\nGold answer: 7 May 2023\nGenerated answer: On 7 May 2023\n" in filled


def test_answer_prompt_lists_each_speakers_memories_as_mem0_renders_them() -> None:
    hit = {"memory": "Caroline: I went to a support group", "metadata": {"timestamp": "1:56 pm on 8 May, 2023"}}
    line = prompts.memory_line(hit)
    assert line == "1:56 pm on 8 May, 2023: Caroline: I went to a support group"
    text = prompts.answer_prompt("Caroline_0", [line], "Melanie_0", [], "When? {{question}}")
    assert f"Memories for user Caroline:\n\n    {json.dumps([line], indent=4)}\n" in text
    assert "Memories for user Melanie:\n\n    []\n" in text
    assert "Question: When? {{question}}\n" in text  # values are not templates themselves
    assert "{{" not in text.replace("When? {{question}}", "")


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ('{"label": "CORRECT"}', "CORRECT"),
        ('```json\n{"label": "WRONG"}\n```', "WRONG"),
        ('The answer names the same date.\n{"label": "CORRECT"}', "CORRECT"),
        ('<think>It could be WRONG or CORRECT.</think>{"label": "WRONG"}', "WRONG"),
        ('reasoning the template opened</think>\n{"Label": "correct"}', "CORRECT"),
        ("{'label': 'CORRECT'}", "CORRECT"),  # single quotes: the one label word
        ("The generated answer is WRONG.", "WRONG"),
        ("INCORRECT", None),  # not the word CORRECT
        ("It is CORRECT, no, WRONG", None),  # both: neither is taken
        ("", None),
    ],
)
def test_the_judges_label_is_read_from_imperfect_replies(reply: str, label: str | None) -> None:
    assert parse_label(reply) == label


def test_reasoning_never_reaches_an_answer() -> None:
    assert strip_reasoning("<think>Let me see, May?</think>\n7 May 2023") == "7 May 2023"
    assert strip_reasoning("so it was May</think>7 May 2023") == "7 May 2023"
    assert strip_reasoning("7 May 2023") == "7 May 2023"


def test_f1_is_mem0s_set_token_f1_and_bleu1_is_clipped_unigram_precision_with_brevity_penalty() -> None:
    assert metrics.f1("7 May 2023", "7 May 2023") == 1.0
    # sets {on, 7, may, 2023} vs {7, may, 2023}: P 3/4, R 1 -> 6/7; case and . , ! ? ignored
    assert metrics.f1("On 7 May, 2023.", "7 may 2023") == pytest.approx(6 / 7)
    assert metrics.f1("Paris", "") == 0.0
    assert metrics.f1("yes yes yes", "yes") == 1.0  # sets, not counts
    assert metrics.bleu1("the cat", "the cat sat") == pytest.approx(math.exp(1 - 3 / 2))
    assert metrics.bleu1("cat cat cat", "the cat") == pytest.approx(1 / 3)  # clipped: one "cat" in the reference
    assert metrics.bleu1("dog", "the cat") == 0.0
    table = metrics.by_category([(1, 1.0), (1, 0.0), (2, 1.0)], (1, 2, 3))
    assert table == {
        "1": {"mean": 0.5, "n": 2},
        "2": {"mean": 1.0, "n": 1},
        "3": {"mean": None, "n": 0},
        "overall": {"mean": 0.6667, "n": 3},
    }


def test_logs_are_append_only_and_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    store = RunDir(tmp_path / "run")
    store.lock()
    store.append("ingest", {"add": "a"})
    store.append("ingest", {"add": "b"})
    store.close()
    path = tmp_path / "run" / "ingest.jsonl"
    path.write_bytes(path.read_bytes() + b'{"add": "c", "sta')  # a crash in the middle of a write
    store = RunDir(tmp_path / "run")
    store.lock()
    assert [r["add"] for r in store.read("ingest")] == ["a", "b"]
    store.append("ingest", {"add": "d"})
    assert [r["add"] for r in store.read("ingest")] == ["a", "b", "d"]
    with pytest.raises(SystemExit, match="in use"):
        RunDir(tmp_path / "run").lock()
    store.close()


class PickyServer(FakeOpenAI):
    """An OpenAI-compatible server whose chat template needs a user message and which knows no response_format
    (both 400, as llama.cpp and some Ollama templates answer)."""

    def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if [m["role"] for m in body["messages"]] == ["system"]:
            return 400, {"error": {"message": "Conversation roles must alternate user/assistant/user/assistant"}}
        if body.get("response_format"):
            return 400, {"error": {"message": "response_format is not supported"}}
        return super()._chat(body)


async def test_a_server_refusing_a_lone_system_message_or_json_mode_is_asked_otherwise_once_and_noted() -> None:
    line = "1:56 pm on 8 May, 2023: Caroline: I went to the LGBTQ support group"
    ask = prompts.answer_prompt("Caroline_0", [line], "Melanie_0", [], "When did Caroline go to the group?")
    with running(PickyServer(qa_echo=True)) as fake:
        model = Model(fake.url, "picky", "sk-test", timeout_s=10)
        try:
            answers = [await model.answer(ask) for _ in range(2)]
            judge = prompts.judge_prompt("mem0", "When did Caroline go to the group?", "7 May 2023", answers[0].text)
            labels = [parse_label((await model.judge(judge)).text) for _ in range(2)]
        finally:
            await model.aclose()
    assert [a.text for a in answers] == [line, line]
    assert labels == ["CORRECT", "CORRECT"]  # "May", "2023": the scripted generous judge's overlap
    sent = [r["body"] for r in fake.chat_requests()]
    assert [b["messages"][0]["role"] for b in sent] == ["system", "user", "user", "user", "user", "user"]
    assert [bool(b.get("response_format")) for b in sent] == [False, False, False, True, False, False]
    assert len(model.notes) == 2
    assert answers[1].prompt_tokens is not None
    assert answers[1].prompt_tokens > 0
