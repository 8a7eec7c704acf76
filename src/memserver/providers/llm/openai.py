"""Any OpenAI-compatible /chat/completions endpoint (OpenAI, Azure, Ollama, vLLM, LM Studio, llama.cpp...).

Structured output is asked for with `json_schema`; servers that reject it (llama.cpp answers 500, some Ollama
versions 400) are asked again with `json_object` and the schema in the system message, and that endpoint stays
in json_object mode for the rest of the process. Every reply is validated by the caller's pydantic model; one
repair round trip (the bad reply plus the validator's errors) is allowed before giving up.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

import orjson
from pydantic import BaseModel, ValidationError

from memserver.providers.errors import (
    ProviderError,
    ProviderInvalidReply,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from memserver.providers.llm.base import ChatMessage, Generation, T, Usage, strip_images

log = logging.getLogger(__name__)

StructuredOutput = Literal["auto", "json_schema", "json_object"]

# Statuses with which servers refuse a json_schema response_format (llama.cpp: 500; Ollama, vLLM: 400/422).
_SCHEMA_REJECTED = frozenset({400, 422, 500})
# (base URL, model) pairs found to refuse json_schema in this process: asked in json_object mode directly.
_JSON_OBJECT_ONLY: set[tuple[str, str]] = set()
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)
_MAX_REPAIR_ERRORS = 10


class _Limits(TypedDict, total=False):
    """Optional arguments of a completion, sent only when configured."""

    max_tokens: int


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
        temperature: float = 0.0,
        vision: bool = False,
        structured_output: StructuredOutput = "auto",
        max_tokens: int | None = None,
    ):
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
        self._structured = structured_output
        self._max_tokens = max_tokens
        self._endpoint = (str(self._client.base_url), model)

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        response_model: type[T],
        *,
        context: dict[str, Any] | None = None,
    ) -> Generation[T]:
        """Ask for a reply matching `response_model`; one repair attempt if it does not validate."""
        usage = Usage()
        msgs = list(messages) if self.vision else strip_images(messages)
        text = await self._ask(msgs, response_model, usage)
        try:
            return Generation(parse_reply(text, response_model, context), usage)
        except ValidationError as exc:
            log.info("LLM reply did not validate (%d errors); asking for a repair", exc.error_count())
            bad = {"role": "assistant", "content": text or "(empty reply)"}  # some servers refuse empty content
            repair = [*msgs, bad, {"role": "user", "content": repair_prompt(exc)}]
        text = await self._ask(repair, response_model, usage)
        try:
            return Generation(parse_reply(text, response_model, context), usage)
        except ValidationError as exc:
            raise ProviderInvalidReply(
                "the LLM reply did not match the expected JSON schema after one repair attempt", public=True
            ) from exc

    async def aclose(self) -> None:
        await self._client.close()

    def structured_mode(self) -> Literal["json_schema", "json_object"]:
        """The response_format type the next request will use."""
        if self._structured != "auto":
            return self._structured
        return "json_object" if self._endpoint in _JSON_OBJECT_ONLY else "json_schema"

    async def _ask(self, msgs: list[ChatMessage], response_model: type[BaseModel], usage: Usage) -> str:
        """One completion in the current structured mode, falling back to json_object when json_schema is refused."""
        if self.structured_mode() == "json_object":
            return await self._complete(with_schema(msgs, response_model), {"type": "json_object"}, usage)
        schema_format = {
            "type": "json_schema",
            "json_schema": {
                "name": response_model.__name__,
                "schema": _schema(response_model),
                "strict": False,
            },
        }
        try:
            resp = await self._create(msgs, schema_format)
        except self._openai.APIStatusError as exc:
            if self._structured == "json_schema" or exc.status_code not in _SCHEMA_REJECTED:
                raise self._translate(exc) from exc
            text = await self._complete(with_schema(msgs, response_model), {"type": "json_object"}, usage)
            self._remember_json_object(exc.status_code)
            return text
        except self._openai.APIError as exc:
            raise self._translate(exc) from exc
        return _read(resp, usage)

    async def _complete(self, msgs: list[ChatMessage], response_format: dict[str, Any], usage: Usage) -> str:
        try:
            resp = await self._create(msgs, response_format)
        except self._openai.APIError as exc:
            raise self._translate(exc) from exc
        return _read(resp, usage)

    async def _create(self, msgs: list[ChatMessage], response_format: dict[str, Any]) -> bytes:
        extra: _Limits = {} if self._max_tokens is None else {"max_tokens": self._max_tokens}
        # The messages and the response format (a whole JSON schema) go as `extra_body`, which the SDK merges
        # into the request as given: passed as typed arguments they are walked key by key by the SDK's
        # parameter transform, a quarter of the SDK's CPU time per call (measured: ~0.8 ms of ~3.4 ms).
        # They are plain JSON either way; the request is the same bytes.
        # The raw reply, read by `_read`: the SDK's parse into its pydantic ChatCompletion is not needed for
        # one message's text and the usage counts.
        raw = await self._client.chat.completions.with_raw_response.create(
            model=self.model,
            messages=[],
            temperature=self._temperature,
            extra_body={"messages": msgs, "response_format": response_format},
            **extra,
        )
        return raw.content

    def _remember_json_object(self, status: int) -> None:
        if self._structured == "auto" and self._endpoint not in _JSON_OBJECT_ONLY:
            _JSON_OBJECT_ONLY.add(self._endpoint)
            log.warning(
                "the LLM endpoint refused json_schema structured output (HTTP %d) but answered in json_object mode; "
                "model %s is asked in json_object mode from now on (set MEMSERVER_LLM__STRUCTURED_OUTPUT to choose)",
                status,
                self.model,
            )

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
    """A reply model's JSON schema (pydantic takes ~0.4 ms to generate it; the models are fixed classes)."""
    return response_model.model_json_schema()


def _read(content: bytes, usage: Usage) -> str:
    """The reply text of a completion, counting its call and tokens (0 when the server reports none)."""
    usage.calls += 1
    try:
        reply = orjson.loads(content)
    except orjson.JSONDecodeError:
        reply = None
    if not isinstance(reply, dict):
        raise ProviderInvalidReply(
            "the LLM endpoint answered with something that is not a chat completion", public=True
        )
    reported: dict[str, Any] = reply["usage"] if isinstance(reply.get("usage"), dict) else {}
    usage.prompt_tokens += _count(reported.get("prompt_tokens"))
    usage.completion_tokens += _count(reported.get("completion_tokens"))
    details = reported.get("prompt_tokens_details")
    timings = reply.get("timings")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if cached is None and isinstance(timings, dict):  # llama.cpp's own report
        cached = timings.get("cache_n")
    usage.cached_prompt_tokens += _count(cached)
    choices = reply.get("choices") if isinstance(reply.get("choices"), list) else []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    content_text = message.get("content") if isinstance(message, dict) else None
    return content_text if isinstance(content_text, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def parse_reply(text: str, response_model: type[T], context: dict[str, Any] | None) -> T:
    """Validate a reply, tolerating what small models wrap JSON in (<think> blocks, code fences)."""
    cleaned = _THINK.sub("", text).strip()
    fenced = _FENCE.match(cleaned)
    if fenced:
        cleaned = fenced.group(1).strip()
    return response_model.model_validate_json(cleaned, context=context)


def repair_prompt(exc: ValidationError) -> str:
    """Ask for corrected JSON, listing the validator's errors (without echoing the reply back)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False)[:_MAX_REPAIR_ERRORS]:
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"- {loc}: {err['msg']}" if loc else f"- {err['msg']}")
    return (
        "Your reply was not valid:\n"
        + "\n".join(lines)
        + "\nReply again with the corrected JSON object only, no other text."
    )


def with_schema(msgs: list[ChatMessage], response_model: type[BaseModel]) -> list[ChatMessage]:
    """The messages with the reply's JSON schema described in the system message (json_object mode)."""
    schema = json.dumps(_schema(response_model), separators=(",", ":"))
    note = f"Reply with one JSON object only, matching this JSON schema:\n{schema}"
    if msgs and msgs[0].get("role") == "system" and isinstance(msgs[0].get("content"), str):
        return [{**msgs[0], "content": f"{msgs[0]['content']}\n\n{note}"}, *msgs[1:]]
    return [{"role": "system", "content": note}, *msgs]
