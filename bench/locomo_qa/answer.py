"""Questions, as Mem0's `evaluation/src/memzero/search.py` and `metrics/llm_judge.py`: the top-k memories of each
speaker's namespace, one answer from the model, then a label from each judge. Questions already answered are not
asked again; an answer that misses a judge's label gets only that label. `--concurrency` questions in flight.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any, NamedTuple

from bench.locomo_qa import prompts
from bench.locomo_qa.llm import Completion, Model, parse_label
from bench.locomo_qa.plan import Question
from bench.locomo_qa.service import Memserver
from bench.locomo_qa.store import RunDir

MAX_FAILING = 10  # questions failing in a row: the model or the server is down, not one question


class Pending(NamedTuple):
    question: Question
    answered: dict[str, Any] | None  # its answer record, when it has one
    judges: list[str]  # the judges that have not labelled it yet


def pending(questions: list[Question], store: RunDir, judges: tuple[str, ...]) -> list[Pending]:
    answered = {r["q"]: r for r in store.read("answers")}
    judged = {(r["q"], r["judge"]) for r in store.read("judgments")}
    out = []
    for q in questions:
        missing = [j for j in judges if (q.key, j) not in judged]
        if q.key not in answered or missing:
            out.append(Pending(q, answered.get(q.key), missing))
    return out


class Answering:
    def __init__(
        self,
        ms: Memserver,
        answerer: Model,
        judge: Model,
        store: RunDir,
        *,
        top_k: int,
        judges: tuple[str, ...],
        concurrency: int,
        log: Callable[[str], None],
    ) -> None:
        self.ms, self.answerer, self.judge, self.store, self.log = ms, answerer, judge, store, log
        self.top_k, self.judges = top_k, judges
        self.slots = asyncio.Semaphore(concurrency)
        self.counts: collections.Counter[str] = collections.Counter()
        self.total = 0
        self.failing = 0  # questions failed in a row

    async def run(self, questions: list[Question]) -> dict[str, int]:
        work = pending(questions, self.store, self.judges)
        self.total = len(work)
        await asyncio.gather(*(self._one(*p) for p in work))
        return dict(self.counts)

    async def _one(self, q: Question, done: dict[str, Any] | None, judges: list[str]) -> None:
        async with self.slots:
            try:
                record = done or await self._answer(q)
                for j in judges:
                    await self._judge(q, record["answer"], j)
            except Exception as exc:  # one question's failure (the model, the server) must not end the run
                self.counts["errors"] += 1
                self.failing += 1
                self.log(f"{q.key}: {type(exc).__name__}: {str(exc)[:300]}")
                if self.failing >= MAX_FAILING:
                    raise SystemExit(f"{MAX_FAILING} questions failed in a row: stopped; --resume continues") from exc
                return
            self.failing = 0
            self.counts["finished"] += 1
        n = self.counts["finished"] + self.counts["errors"]
        if n % 25 == 0 or n == self.total:
            self.log(f"questions {n}/{self.total} ({self.counts['errors']} errors)")

    async def _answer(self, q: Question) -> dict[str, Any]:
        hits: list[list[str]] = []
        search_s: list[float] = []
        for user_id in q.users:
            reply = await self.ms.search(q.question, user_id, self.top_k)
            if reply.status != 200:
                raise RuntimeError(f"search failed: {reply.status} {str(reply.body)[:300]}")
            rows = reply.body.get("results", []) if isinstance(reply.body, dict) else reply.body
            hits.append([prompts.memory_line(h) for h in rows])
            search_s.append(round(reply.seconds, 4))
        prompt = prompts.answer_prompt(q.users[0], hits[0], q.users[1], hits[1], q.question)
        c = await self.answerer.answer(prompt)
        record = {
            "q": q.key,
            "conv": q.conv,
            "category": q.category,
            "question": q.question,
            "gold": q.gold,
            "answer": c.text,
            "search_s": search_s,
            "memories": hits,
            **_usage(c),
        }
        self.store.append("answers", record)
        self.counts["answered"] += 1
        return record

    async def _judge(self, q: Question, answer: str, judge: str) -> None:
        c = await self.judge.judge(prompts.judge_prompt(judge, q.question, q.gold, answer))
        label = parse_label(c.text)
        self.store.append(
            "judgments",
            {"q": q.key, "judge": judge, "label": label or "WRONG", "parsed": label is not None, **_usage(c)}
            | ({} if label is not None else {"reply": c.text[:500]}),
        )
        self.counts[f"judged_{judge}"] += 1


def _usage(c: Completion) -> dict[str, Any]:
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "seconds": round(c.seconds, 4)}
