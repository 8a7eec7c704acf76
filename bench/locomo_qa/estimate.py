"""The cost of the work left, shown before it starts, and the cost of what was done, from the recorded usage.

Tokens are estimated at 4 characters each (OpenAI's rule of thumb for English; no tokenizer is installed here).
Per add: memserver's own extraction prompt rendered for that add (with the project's custom instructions), plus
15 existing memories of 20 tokens, one call (memserver makes one call per LoCoMo add: bench/README.md); a JSON
schema sent as `response_format` is not counted. Per question: the answer prompt with 2 x top_k memories of 25
tokens, and each judge's prompt. Completion tokens are assumptions (below); the report puts the estimate next to
what the servers counted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from bench.locomo_qa import prompts
from bench.locomo_qa.answer import Pending
from bench.locomo_qa.plan import Add
from memserver.pipeline.prompts.extract import build as build_prompt
from memserver.pipeline.types import ExtractionRequest, InMessage

CHARS_PER_TOKEN = 4.0
CANDIDATES, CANDIDATE_TOKENS = 15, 20
MEMORY_LINE = "x" * 100  # ~25 tokens, a typical "<date>: <memory>" line
ANSWER_TEXT = "x" * 40  # what a "less than 5-6 words" answer is judged with
ADD_COMPLETION, ANSWER_COMPLETION, JUDGE_COMPLETION = 100, 60, 30


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def add_prompt_tokens(add: Add, custom_instructions: str | None) -> int:
    req = ExtractionRequest(
        messages=[InMessage(index=i, role=m["role"], text=m["content"]) for i, m in enumerate(add.messages)],
        observed_at=datetime.fromtimestamp(add.ts, UTC),
        speakers=frozenset({"user"}),
        custom_instructions=custom_instructions,
    )
    return tokens("\n".join(str(m["content"]) for m in build_prompt(req))) + CANDIDATES * CANDIDATE_TOKENS


@dataclass
class Estimate:
    adds: int = 0
    add_prompt: int = 0
    add_completion: int = 0
    questions: int = 0
    answer_prompt: int = 0
    answer_completion: int = 0
    judge_calls: int = 0
    judge_prompt: int = 0
    judge_completion: int = 0

    def usd(self, prices: dict[str, float | None]) -> float | None:
        """Dollars at `prices` (USD per 1M tokens: in, out, judge_in, judge_out); None when a price is missing."""
        parts = (
            (self.add_prompt + self.answer_prompt, prices.get("in")),
            (self.add_completion + self.answer_completion, prices.get("out")),
            (self.judge_prompt, prices.get("judge_in")),
            (self.judge_completion, prices.get("judge_out")),
        )
        if any(n and p is None for n, p in parts):
            return None
        return round(sum(n * (p or 0.0) / 1e6 for n, p in parts), 4)

    def as_dict(self, prices: dict[str, float | None]) -> dict[str, Any]:
        return asdict(self) | {"usd": self.usd(prices)}


def estimate(adds: list[Add], questions: list[Pending], *, top_k: int, ci: str | None) -> Estimate:
    """What the adds still to send and the questions still to answer or judge will cost."""
    e = Estimate(adds=len(adds), add_completion=ADD_COMPLETION * len(adds))
    e.add_prompt = sum(add_prompt_tokens(a, ci) for a in adds)
    lines = [MEMORY_LINE] * top_k
    for q, answered, judges in questions:
        if answered is None:
            e.questions += 1
            e.answer_prompt += tokens(prompts.answer_prompt(q.users[0], lines, q.users[1], lines, q.question))
            e.answer_completion += ANSWER_COMPLETION
        for j in judges:
            e.judge_calls += 1
            e.judge_prompt += tokens(prompts.judge_prompt(j, q.question, q.gold, ANSWER_TEXT))
            e.judge_completion += JUDGE_COMPLETION
    return e


def actual(ingest: list[dict[str, Any]], answers: list[dict[str, Any]], judgments: list[dict[str, Any]]) -> Estimate:
    """The same sums from what the servers reported (an add's tokens are memserver's event metadata)."""

    def total(rows: list[dict[str, Any]], key: str) -> int:
        return sum(int(r.get(key) or 0) for r in rows)

    done = [r for r in ingest if r["status"] == "applied"]
    return Estimate(
        adds=len(done),
        add_prompt=total(done, "prompt_tokens"),
        add_completion=total(done, "completion_tokens"),
        questions=len(answers),
        answer_prompt=total(answers, "prompt_tokens"),
        answer_completion=total(answers, "completion_tokens"),
        judge_calls=len(judgments),
        judge_prompt=total(judgments, "prompt_tokens"),
        judge_completion=total(judgments, "completion_tokens"),
    )


def table(e: Estimate, prices: dict[str, float | None], answer_model: str, judge_model: str) -> str:
    usd = e.usd(prices)
    rows = [
        f"  adds (extraction, {answer_model}): {e.adds} x ~{e.add_prompt // max(e.adds, 1)} prompt tokens "
        f"= {e.add_prompt:,} in, ~{e.add_completion:,} out",
        f"  answers ({answer_model}): {e.questions} x ~{e.answer_prompt // max(e.questions, 1)} prompt tokens "
        f"= {e.answer_prompt:,} in, ~{e.answer_completion:,} out",
        f"  judge calls ({judge_model}): {e.judge_calls} x ~{e.judge_prompt // max(e.judge_calls, 1)} prompt tokens "
        f"= {e.judge_prompt:,} in, ~{e.judge_completion:,} out",
        f"  total: {e.add_prompt + e.answer_prompt + e.judge_prompt:,} input + "
        f"{e.add_completion + e.answer_completion + e.judge_completion:,} output tokens, "
        + (f"about ${usd:.2f}" if usd is not None else "no price given (--price-in/--price-out/--judge-price-*)"),
    ]
    return "\n".join(rows)
