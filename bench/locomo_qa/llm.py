"""The answer and judge models: any OpenAI-compatible chat endpoint, at temperature 0.

Two server quirks are handled once and remembered for the rest of the run (and reported): a server that refuses a
lone system message (the answer prompt is one, as in Mem0's evaluation) gets it as a user message, and one that
refuses `response_format: json_object` (the judge asks for it, as Mem0's does) is asked without it. Reasoning
(`<think>` blocks, `reasoning_content`) is never part of an answer or a label.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import openai

LABELS = ("CORRECT", "WRONG")
_REASONING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)
_CLOSING = re.compile(r"</(?:think|thinking|reasoning)>", re.I)


@dataclass
class Completion:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float


@dataclass
class Model:
    """One chat model on one endpoint."""

    base_url: str
    model: str
    api_key: str
    timeout_s: float = 300.0
    system_ok: bool = True
    json_ok: bool = True
    notes: list[str] = field(default_factory=list)
    client: Any = None

    def __post_init__(self) -> None:
        self.client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=4
        )

    async def aclose(self) -> None:
        await self.client.close()

    async def _create(self, content: str, role: str, json_mode: bool) -> Completion:
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if json_mode else {}
        t0 = time.perf_counter()
        r = await self.client.chat.completions.create(
            model=self.model, messages=[{"role": role, "content": content}], temperature=0.0, **extra
        )
        seconds = time.perf_counter() - t0
        usage = r.usage
        return Completion(
            text=strip_reasoning((r.choices[0].message.content or "") if r.choices else ""),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            seconds=seconds,
        )

    async def answer(self, prompt: str) -> Completion:
        """Mem0's answer call: the prompt as the only (system) message."""
        if self.system_ok:
            try:
                return await self._create(prompt, "system", json_mode=False)
            except openai.BadRequestError as exc:
                reply = await self._create(prompt, "user", json_mode=False)  # raises if this is refused too
                self.system_ok = False
                self.notes.append(f"{self.model}: a lone system message was refused ({exc.status_code}); sent as user")
                return reply
        return await self._create(prompt, "user", json_mode=False)

    async def judge(self, prompt: str) -> Completion:
        """Mem0's judge call: one user message, JSON object mode."""
        if self.json_ok:
            try:
                return await self._create(prompt, "user", json_mode=True)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                reply = await self._create(prompt, "user", json_mode=False)
                self.json_ok = False
                self.notes.append(f"{self.model}: response_format json_object was refused ({exc.status_code})")
                return reply
        return await self._create(prompt, "user", json_mode=False)


def strip_reasoning(text: str) -> str:
    """The reply without reasoning blocks; after a closing tag with no opening one (the template opened it), only
    what follows the last closing tag."""
    text = _REASONING.sub("", text)
    parts = _CLOSING.split(text)
    return parts[-1].strip()


def parse_label(text: str) -> str | None:
    """CORRECT or WRONG from a judge reply: the "label" of a JSON object (in a fence, after a sentence, any key or
    value case), else the one label word the text contains; None when it states neither or both."""
    text = strip_reasoning(text)
    for match in re.finditer(r"\{[^{}]*\}", text):
        try:
            obj = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(obj, dict):
            for key, value in obj.items():
                if str(key).strip().lower() == "label" and str(value).strip().upper() in LABELS:
                    return str(value).strip().upper()
    words = set(re.findall(r"\b(CORRECT|WRONG)\b", text.upper()))
    return words.pop() if len(words) == 1 else None
