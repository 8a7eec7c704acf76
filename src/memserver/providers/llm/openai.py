"""Any OpenAI-compatible /chat/completions endpoint (OpenAI, Azure, Ollama, vLLM, LM Studio, llama.cpp...).

Structured output is asked for with `json_schema`; what an endpoint refuses (json_schema, json_object, the
system role, temperature, seed, `max_tokens`) is found out once and remembered per endpoint (`quirks`).
Replies are read the way a small model means them (`lenient`): at most ONE extra call per generation, a
repair round for a reply with nothing usable, or a continuation for one cut off by its token limit.
Reasoning (`<think>` blocks, `reasoning_content`, `reasoning`) is stripped and never stored or logged.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
from pydantic import BaseModel

from memserver import metrics
from memserver.providers.errors import (
    ProviderError,
    ProviderInvalidReply,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from memserver.providers.llm import lenient, quirks
from memserver.providers.llm.base import ChatMessage, Generation, T, Usage, strip_images
from memserver.providers.llm.repair import continuation, merge_system, repair, with_schema

log = logging.getLogger(__name__)

StructuredOutput = Literal["auto", "json_schema", "json_object", "text"]
# Completion tokens added to every budget once an endpoint is seen reasoning (its thinking counts against
# max_tokens: Ollama's gemma4 spent a whole 2k budget thinking, ollama#15288).
REASONING_ALLOWANCE = 1536
MAX_ATTEMPTS = 5  # one request, plus one per refused feature (a new endpoint costs at most a few)
_WHY = {
    "json_object": "refused json_schema structured output; it is asked in json_object mode, with the schema in "
    "the instructions, from now on (MEMSERVER_LLM__STRUCTURED_OUTPUT chooses)",
    "text": "refused json_object mode too; it is asked for plain text with the schema in the instructions from now on",
    "system_role": "refused the system role; the instructions open the first user message from now on "
    "(MEMSERVER_LLM__SYSTEM_ROLE chooses)",
    "system_role_blind": "failed without an explanation in both structured modes and answered once the "
    "instructions opened the first user message; it is asked that way from now on",
    "temperature": "refused the temperature; it is no longer sent, so replies may vary between runs",
    "seed": "refused a seed; it is no longer sent",
    "max_completion_tokens": "asked for max_completion_tokens instead of max_tokens; sent that way from now on",
}


@dataclass
class Answer:
    """One completion as read: its text, why it stopped, and whether the model reasoned (never its reasoning)."""

    text: str
    finish_reason: str | None
    reasoned: bool = False


class OpenAILLM:
    """The LLM port over `openai.AsyncOpenAI`; the SDK's own retries and backoff handle transient failures."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        model: str,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        temperature: float | None = 0.0,
        seed: int | None = 0,
        vision: bool = False,
        structured_output: StructuredOutput = "auto",
        system_role: quirks.SystemRole = "auto",
        max_tokens: int | None = 4096,
        reasoning_effort: str | None = None,
    ):
        # Deferred: the openai SDK takes ~0.8 s to import; a server without an LLM never needs it.
        import openai

        self._openai = openai
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=max_retries
        )
        self.model = model
        self.name = f"openai:{model}"
        self.vision = vision
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._temperature = temperature
        self._seed = seed
        self._structured = structured_output
        self._system_role = system_role
        self._max_tokens = max_tokens  # the ceiling of every budget; None: never sent (the server's default)
        self._reasoning_effort = reasoning_effort
        self._endpoint = (str(self._client.base_url), model)

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        response_model: type[T],
        *,
        context: dict[str, Any] | None = None,
        budget: int | None = None,
    ) -> Generation[T]:
        """A reply understood as `response_model` (see the module docstring); at most one extra call. A failure
        carries what the requests answered before it cost (`ProviderError.usage`)."""
        usage = Usage()
        try:
            return await self._generate(messages, response_model, context, budget, usage)
        except ProviderError as exc:
            exc.usage = usage
            raise

    async def _generate(
        self,
        messages: Sequence[ChatMessage],
        response_model: type[T],
        context: dict[str, Any] | None,
        budget: int | None,
        usage: Usage,
    ) -> Generation[T]:
        msgs = list(messages) if self.vision else strip_images(messages)
        first = await self._ask(msgs, response_model, usage, self._budget(budget))
        parsed = self._parse(first, response_model, context)
        key = parsed.items_key
        if parsed.usable and not (parsed.cut and key):
            return Generation(self._value(parsed, response_model), usage, parsed.notes)
        if parsed.usable and key:  # cut off after some complete items: one continuation for the rest
            return await self._continue(msgs, response_model, context, usage, parsed, key)
        notes: list[str] = []
        if parsed.cut:  # cut off before anything complete (reasoning took the budget): once more, with more room
            notes.append(
                "the reply was cut off by its token limit before any complete item; "
                "the model was asked again with a larger budget"
            )
            retry = msgs
            tokens = None if self._max_tokens is None else self._max_tokens + REASONING_ALLOWANCE
        else:
            log.info("the LLM reply held nothing usable (%d problems); asking for a repair", len(parsed.problems))
            retry, tokens = repair(msgs, first.text, parsed.problems), self._budget(budget)
        second = self._parse(await self._ask(retry, response_model, usage, tokens), response_model, context)
        if not second.usable:
            raise ProviderInvalidReply(
                "the LLM reply did not match the expected JSON schema after one repair attempt", public=True
            )
        if second.cut and second.items_key:
            notes.append("the reply was cut off by its token limit again; its complete items were kept")
        return Generation(self._value(second, response_model), usage, [*notes, *second.notes])

    async def _continue(
        self,
        msgs: list[ChatMessage],
        response_model: type[T],
        context: dict[str, Any] | None,
        usage: Usage,
        parsed: lenient.Parsed,
        key: str,
    ) -> Generation[T]:
        notes = [
            f"the reply was cut off by its token limit after {len(parsed.complete)} complete item(s); "
            "the model was asked once to continue",
            *parsed.notes,
        ]
        answer = await self._ask(continuation(msgs, key, parsed.complete), response_model, usage, self._max_tokens)
        more = self._parse(answer, response_model, context)
        value = self._value(parsed, response_model)
        if not more.usable:
            notes.append("the continuation held nothing usable; the complete items were kept")
            return Generation(value, usage, notes)
        if more.cut:
            notes.append("the continuation was cut off as well; its complete items were kept")
        merged = value.model_copy(update={key: [*getattr(value, key), *getattr(more.value, key)]})
        return Generation(merged, usage, list(dict.fromkeys([*notes, *more.notes])))

    def _parse(self, answer: Answer, response_model: type[BaseModel], context: dict[str, Any] | None) -> lenient.Parsed:
        cut = True if answer.finish_reason == "length" else None if answer.finish_reason is None else False
        parsed = lenient.parse(answer.text, response_model, context, cut=cut)
        if answer.reasoned or parsed.reasoned:
            self._learn(replace(self._quirks(), reasons=True), [])
        return parsed

    @staticmethod
    def _value(parsed: lenient.Parsed, response_model: type[T]) -> T:
        assert isinstance(parsed.value, response_model)
        return parsed.value

    async def aclose(self) -> None:
        await self._client.close()

    def structured_mode(self) -> quirks.Structured:
        """The response_format the next request will use (`text`: none, the schema in the instructions)."""
        return self._quirks().structured

    def _quirks(self) -> quirks.Quirks:
        q = quirks.known(self._endpoint, quirks.Quirks())
        if self._structured != "auto":
            q = replace(q, structured=self._structured)
        if self._system_role != "auto":
            q = replace(q, merge_system=self._system_role == "merge")
        return q

    def _budget(self, budget: int | None) -> int | None:
        if self._max_tokens is None:
            return None
        tokens = self._max_tokens if budget is None else min(budget, self._max_tokens)
        return tokens + (REASONING_ALLOWANCE if self._quirks().reasons else 0)

    async def _ask(
        self, msgs: list[ChatMessage], response_model: type[BaseModel], usage: Usage, max_tokens: int | None
    ) -> Answer:
        """One completion; a refused feature is dropped and the request sent again (then remembered)."""
        q = self._quirks()
        found: list[tuple[str, int]] = []
        for _ in range(MAX_ATTEMPTS):
            params = self._params(q, max_tokens)
            try:
                raw = await self._client.chat.completions.with_raw_response.create(
                    model=self.model, messages=[], extra_body={**self._shape(msgs, response_model, q), **params}
                )
            except self._openai.APIStatusError as exc:
                known = quirks.classify(
                    self._refusal(exc),
                    q,
                    forced_structured=self._structured != "auto",
                    system_role=self._system_role,
                    sent=set(params),
                )
                if known is None:
                    raise self._translate(exc) from exc
                q, name = known
                found.append((name, exc.status_code))
                continue
            except self._openai.APIError as exc:
                raise self._translate(exc) from exc
            answer = _read(raw.content, usage)
            self._learn(q, found)
            return answer
        raise ProviderRejected("the LLM endpoint refused every form of the request", public=True)

    def _shape(self, msgs: list[ChatMessage], response_model: type[BaseModel], q: quirks.Quirks) -> dict[str, Any]:
        """The messages and response format in the endpoint's form. (They go as `extra_body`, which the SDK
        merges as given: as typed arguments they are walked key by key by the SDK's parameter transform, a
        quarter of its CPU time per call, measured ~0.8 of ~3.4 ms. The request is the same bytes.)"""
        body: dict[str, Any] = {}
        if q.structured == "json_schema":
            schema = {"name": response_model.__name__, "schema": _schema(response_model), "strict": False}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        else:
            msgs = with_schema(msgs, _schema(response_model))
            if q.structured == "json_object":
                body["response_format"] = {"type": "json_object"}
        body["messages"] = merge_system(msgs) if q.merge_system else msgs
        return body

    def _params(self, q: quirks.Quirks, max_tokens: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self._temperature is not None and q.send_temperature:
            params["temperature"] = self._temperature
        if self._seed is not None and q.send_seed:
            params["seed"] = self._seed
        if max_tokens is not None:
            params[q.max_tokens_field] = max_tokens
        if self._reasoning_effort:
            params["reasoning_effort"] = self._reasoning_effort
        return params

    def _learn(self, q: quirks.Quirks, found: list[tuple[str, int]]) -> None:
        """Remember what this endpoint refused (auto modes only), and say so once."""
        stored = quirks.known(self._endpoint, quirks.Quirks())
        learned = replace(
            q,
            structured=q.structured if self._structured == "auto" else stored.structured,
            merge_system=q.merge_system if self._system_role == "auto" else stored.merge_system,
        )
        if learned == stored:
            return
        quirks.remember(self._endpoint, learned)
        for name, status in found:
            metrics.LLM_FALLBACKS.labels(name).inc()
            log.warning("the LLM endpoint (model %s) %s (HTTP %d)", self.model, _WHY.get(name, name), status)

    def _refusal(self, exc: Any) -> quirks.Refusal:
        """The refusal's status, `param` and the server's own message (never shown to clients)."""
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else body
        param = getattr(exc, "param", None)
        return quirks.Refusal(exc.status_code, str(param) if param else None, str(message or ""))

    def _translate(self, exc: Exception) -> ProviderError:
        """An SDK error as a ProviderError whose message is ours (no provider text, URL or key)."""
        error = self._ours(exc)
        error.public = True
        return error

    def _ours(self, exc: Exception) -> ProviderError:
        o = self._openai
        if isinstance(exc, o.APITimeoutError):  # before APIConnectionError: it is a subclass
            return ProviderTimeout(f"the LLM endpoint timed out after {self._timeout_s:g} s")
        if isinstance(exc, o.APIConnectionError):
            return ProviderUnavailable("the LLM endpoint could not be reached")
        if isinstance(exc, o.APIStatusError):
            status = exc.status_code
            if status == 429 or status >= 500:
                what = "is rate limiting requests" if status == 429 else "failed"
                return ProviderUnavailable(
                    f"the LLM endpoint {what} (HTTP {status}, after {self._max_retries} retries)"
                )
            if status in (401, 403):
                return ProviderRejected(
                    f"the LLM endpoint refused our credentials (HTTP {status}); check MEMSERVER_LLM__API_KEY"
                )
            return ProviderRejected(f"the LLM endpoint rejected the request (HTTP {status})")
        return ProviderInvalidReply("the LLM endpoint answered with something that is not a chat completion")


@functools.lru_cache(maxsize=64)
def _schema(response_model: type[BaseModel]) -> dict[str, Any]:
    """A reply model's JSON schema as servers are asked for it (pydantic takes ~0.4 ms to build one; the models
    are fixed classes)."""
    return response_model.model_json_schema()


def _read(content: bytes, usage: Usage) -> Answer:
    """The reply of a completion, counting its call and tokens (0 when the server reports none)."""
    usage.calls += 1
    try:
        reply = orjson.loads(content)
    except orjson.JSONDecodeError:
        try:  # a lone surrogate escape (Qwen3 writes them) is refused by orjson, not by json
            reply = json.loads(content)
        except ValueError:
            reply = None
    if not isinstance(reply, dict):
        raise ProviderInvalidReply(
            "the LLM endpoint answered with something that is not a chat completion", public=True
        )
    _count_usage(reply, usage)
    choices = reply.get("choices")
    choice: dict[str, Any] = (
        choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    )
    message: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content_value = message.get("content")
    if isinstance(content_value, list):  # content parts
        content_value = "".join(p.get("text", "") for p in content_value if isinstance(p, dict))
    # Reasoning fields (vLLM, llama.cpp, LM Studio, DeepSeek: reasoning_content; Ollama: reasoning) are only
    # noticed, never read further: they are not the answer and never stored.
    reasoned = any(isinstance(message.get(k), str) and message[k] for k in ("reasoning_content", "reasoning"))
    finish = choice.get("finish_reason")
    return Answer(
        content_value if isinstance(content_value, str) else "", finish if isinstance(finish, str) else None, reasoned
    )


def _count_usage(reply: dict[str, Any], usage: Usage) -> None:
    reported: dict[str, Any] = reply["usage"] if isinstance(reply.get("usage"), dict) else {}
    usage.prompt_tokens += _count(reported.get("prompt_tokens"))
    usage.completion_tokens += _count(reported.get("completion_tokens"))
    details = reported.get("prompt_tokens_details")
    timings = reply.get("timings")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if cached is None and isinstance(timings, dict):  # llama.cpp's own report
        cached = timings.get("cache_n")
    usage.cached_prompt_tokens += _count(cached)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0
