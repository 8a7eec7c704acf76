"""What an OpenAI-compatible endpoint refuses, found out once per (base URL, model) and remembered (per process).

Servers differ: llama.cpp answers 500 to a json_schema response format, Ollama 400; LM Studio accepts only
json_schema or text; Gemma 2 chat templates refuse the system role (vLLM 400, sglang 500, mistral.rs 500 with no
text); OpenAI's reasoning models refuse temperature 0 and want `max_completion_tokens`. A refusal is classified
from the error's status, `param` and message (that text stays in-process: clients get our own words), the
request is sent again without the refused feature, and the endpoint keeps that form from then on. Unknown
errors are not classified (they fail as they are): a context-length 400 must not turn the system role off.
A new endpoint costs at most a few extra requests, then none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

Structured = Literal["json_schema", "json_object", "text"]
SystemRole = Literal["auto", "system", "merge"]


@dataclass(frozen=True)
class Quirks:
    """How to talk to one endpoint."""

    structured: Structured = "json_schema"
    merge_system: bool = False  # the system text goes into the first user message
    send_temperature: bool = True
    send_seed: bool = True
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    reasons: bool = False  # replies carry reasoning: budgets get an allowance for it


# (base URL, model) -> what it was found to refuse, in this process
_QUIRKS: dict[tuple[str, str], Quirks] = {}

_SYSTEM_REFUSED = re.compile(
    r"system (role|message|prompt).{0,40}(not supported|unsupported|must be|only|not allowed)"
    r"|does not support .?system|roles must alternate",
    re.IGNORECASE | re.DOTALL,
)
_NAMES_FORMAT = re.compile(r"response_format|json_object|json_schema", re.IGNORECASE)


def known(endpoint: tuple[str, str], default: Quirks) -> Quirks:
    return _QUIRKS.get(endpoint, default)


def remember(endpoint: tuple[str, str], quirks: Quirks) -> None:
    _QUIRKS[endpoint] = quirks


@dataclass(frozen=True)
class Refusal:
    status: int
    param: str | None
    message: str


def classify(
    refusal: Refusal, q: Quirks, *, forced_structured: bool, system_role: SystemRole, sent: set[str]
) -> tuple[Quirks, str] | None:
    """The endpoint's quirks once this refusal is taken into account, and the quirk's name; None when the
    refusal is not one we know (the request fails as it is). The first matching row wins."""
    text, param = refusal.message, refusal.param or ""
    if system_role == "auto" and not q.merge_system and (_SYSTEM_REFUSED.search(text) or param == "messages[0].role"):
        return replace(q, merge_system=True), "system_role"
    if "temperature" in sent and (param == "temperature" or re.search(r"\btemperature\b", text)):
        return replace(q, send_temperature=False), "temperature"
    if "seed" in sent and (param == "seed" or re.search(r"\bseed\b", text)):
        return replace(q, send_seed=False), "seed"
    if q.max_tokens_field == "max_tokens" and "max_completion_tokens" in text:
        return replace(q, max_tokens_field="max_completion_tokens"), "max_completion_tokens"
    names_format = param == "response_format" or bool(_NAMES_FORMAT.search(text))
    if not forced_structured and q.structured == "json_schema" and (names_format or refusal.status in (400, 422, 500)):
        return replace(q, structured="json_object"), "json_object"
    if not forced_structured and q.structured == "json_object" and names_format:
        return replace(q, structured="text"), "text"
    blind = system_role == "auto" and not q.merge_system and q.structured != "json_schema"
    if blind and refusal.status >= 500 and not text.strip():  # mistral.rs: 500 and no text, for a Gemma template
        return replace(q, merge_system=True), "system_role_blind"
    return None
