"""A real OpenAI-compatible HTTP server on 127.0.0.1 that answers deterministically.

`/v1/embeddings` returns a unit vector derived from a hash of each input text. `/v1/chat/completions` answers,
in this order of preference: the next reply of the `chat_replies` queue, `chat_script(body)`, the echo extractor
(`echo=True`), else "{}". Tests can make the next N requests fail (`fail_next`, with `fail_status`), hang past a
timeout (`hang_next`), be slow (`delay_s`), return the wrong dimension, or refuse `json_schema` response formats
with a status (`reject_json_schema`: 500 plays llama.cpp, 400 plays Ollama); every request is logged.

Servers as they are (each knob plays a real server's refusal; the error body is OpenAI's shape, with `param`):
* `refuse_system_role=(status, message)`: a request with a `system` message is refused (vLLM answers 400
  "System role not supported" for Gemma 2 templates, mistral.rs 500 with no text);
* `refuse_param={"temperature": (400, message)}`: a request that sends that parameter is refused (OpenAI's
  reasoning models and temperature 0; "max_tokens" with a message naming max_completion_tokens, as o1 does);
* `refuse_format={"json_object": (400, message)}`: that response_format type is refused (LM Studio);
* a `chat_replies` entry may be a dict instead of a string: `{"content", "finish_reason", "reasoning_content",
  "reasoning"}` (reasoning models; `finish_reason: "length"` plays a reply cut by `max_tokens`);
* `prefix_cache=True` (with `prefix_cache_min` and `prefix_cache_block` tokens, e.g. 1024 and 128 to follow
  OpenAI's rules) reports `usage.prompt_tokens_details.cached_tokens`: the estimated tokens of the longest
  common prefix of the request's messages with a recent request's (same response_format), as vLLM,
  llama.cpp and OpenAI reuse an unchanged prompt prefix.

`usage` is approximated: tokens = ceil(whitespace-split words * 1.3), over the text of all request messages
(prompt_tokens) and of the reply (completion_tokens). It is the one stand-in the test suite allows: the real
`openai` SDK talks to it over HTTP.

Standalone (for benches): `python -m tests.fakes.openai_server --port N [--echo] [--mem0-echo] [--keep-alive]
[--delay-ms D] [--prefix-cache [--prefix-cache-min T --prefix-cache-block B]]`. `GET /v1/_stats` answers what
was served so far (requests per kind, summed `usage` with the cached prompt tokens, and the server-side handling
time of chat requests), so a bench can take deltas around each operation and subtract the fake's own time from
a client's. `POST /v1/_gate {"open": false}` holds chat requests until `{"open": true}` (a bench's backlog).

`mem0_echo=True` answers the additive extraction prompt of the open-source Mem0 library (`mem0ai` 2.2.x:
`## New Messages` followed by `user: ...` / `assistant: ...` lines) in Mem0's own format,
`{"memory": [{"id": "0", "text": ...}]}`, one memory per user message, so Mem0 embeds and stores what it
extracted exactly as it would with a real model. memserver's prompts still get the memserver echo.

Example:
    fake = FakeOpenAI(reject_json_schema=500, chat_replies=['{"facts": []}'])
    with running(fake):
        ...  # OpenAILLM(base_url=fake.url, ...) -> 500 for json_schema, then '{"facts": []}' in json_object mode
    fake.chat_requests()[-1]["body"]["response_format"]  # {"type": "json_object"}
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from harness.server import LiveServer, served
from tests.fakes.qa_llm import qa_reply

_MESSAGE_LINE = re.compile(r"^\[(\d+)\] (\w+)(?: \([^)]*\))?(?: \[context only\])?: (.*)$")


def fake_embedding(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(dim)
    return (vec / np.linalg.norm(vec)).astype(np.float32).tolist()


def approx_tokens(text: str) -> int:
    """Token count estimate used for `usage`: whitespace-split words * 1.3, rounded up."""
    return math.ceil(len(text.split()) * 1.3)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _flat(messages: list[dict[str, Any]]) -> str:
    """The messages as one text, role by role, for the prefix cache (a role change breaks a prefix)."""
    return "".join(f"\x00{m.get('role')}\x00 {_message_text(m)}" for m in messages)


_ROLE_MARK = re.compile(r"\x00[^\x00]*(?:\x00|$)")  # a role marker of `_flat` (counted as no words)


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix (a binary search over C-level slice comparisons: fast on 10 kB prompts)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _opened(event: threading.Event) -> threading.Event:
    event.set()
    return event


def _cacheable(tokens: int, minimum: int, block: int) -> int:
    """Cached tokens of a common prefix: none below `minimum`, then whole blocks."""
    return 0 if tokens < max(minimum, 1) else tokens // block * block


Reply = str | dict[str, Any]  # a reply's content, or {"content", "finish_reason", "reasoning_content", "reasoning"}


@dataclass
class FakeOpenAI:
    dim: int = 384
    fail_next: int = 0  # answer `fail_status` to this many requests
    fail_status: int = 500
    hang_next: int = 0  # sleep past the client's timeout for this many requests
    hang_s: float = 5.0
    delay_s: float = 0.0  # every request answers after this long (a slow LLM)
    wrong_dim_next: int = 0
    floats_only: bool = False  # ignore encoding_format=base64 and answer lists of floats (as some servers do)
    reject_json_schema: int | None = None  # answer this status to chat requests asking for json_schema
    refuse_system_role: tuple[int, str] | None = None  # (status, message) for requests with a system message
    refuse_param: dict[str, tuple[int, str]] = field(default_factory=dict)  # body parameter -> (status, message)
    refuse_format: dict[str, tuple[int, str]] = field(default_factory=dict)  # response_format type -> (status, ...)
    prefix_cache: bool = False  # report usage.prompt_tokens_details.cached_tokens (see the module docstring)
    prefix_cache_min: int = 0  # fewer common-prefix tokens than this are not cached (OpenAI: 1024)
    prefix_cache_block: int = 1  # cached tokens come in blocks of this many (OpenAI: 128)
    chat_replies: list[Reply] = field(default_factory=list)  # reply contents (or dicts), consumed in order
    chat_script: Callable[[dict[str, Any]], str] | None = None  # request body -> reply content
    echo: bool = False  # echo extractor: one ADD fact per message of the requested speaker
    mem0_echo: bool = False  # answer Mem0 OSS's extraction prompt: one memory per user message, Mem0's format
    heuristic_graph: bool = False  # echo with graph on: "Speaker: text" facts mention the text's names (see below)
    qa_echo: bool = False  # answer and judge the prompts of bench.locomo_qa (tests/fakes/qa_llm.py)
    keep_alive: bool = False  # HTTP/1.1 persistent connections (default HTTP/1.0: one connection per request)
    stats: dict[str, float] = field(default_factory=dict)  # what /v1/_stats answers (see `count`)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _recent: list[tuple[str, str]] = field(default_factory=list)  # (response_format, flattened prompt), newest last
    # Chat requests wait while the gate is closed (`POST /v1/_gate {"open": false}`; open again with true):
    # a bench queues work behind a model that has not answered yet, then lets it answer.
    gate: threading.Event = field(default_factory=lambda: _opened(threading.Event()))

    def _take(self, name: str) -> bool:
        with self._lock:
            if getattr(self, name) > 0:
                setattr(self, name, getattr(self, name) - 1)
                return True
            return False

    def count(self, **deltas: float) -> None:
        with self._lock:
            for key, value in deltas.items():
                self.stats[key] = self.stats.get(key, 0) + value

    def stats_snapshot(self) -> dict[str, float]:
        """Requests served per kind, summed chat `usage` (and prompt characters, a second proxy), and the chat
        and embedding requests' server-side handling time."""
        keys = (
            "requests",
            "chat_requests",
            "embedding_requests",
            "prompt_tokens",
            "completion_tokens",
            "prompt_chars",
            "cached_prompt_tokens",
            "cached_prompt_tokens_openai_rule",
        )
        with self._lock:
            out = {k: self.stats.get(k, 0) for k in keys}
            out["chat_handling_ms"] = round(self.stats.get("chat_handling_ms", 0.0), 3)
            out["embedding_handling_ms"] = round(self.stats.get("embedding_handling_ms", 0.0), 3)
            return out

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The reply is decided when the request arrives and sent after any scripted wait: a hung request
        that wakes up after its client gave up must not take a reply (or run a script) meant for a later
        request, which is what happened when a test's slow-LLM requests woke inside the next test."""
        if path.endswith("/_gate"):
            if body.get("open", True):
                self.gate.set()
            else:
                self.gate.clear()
            return 200, {"open": self.gate.is_set()}
        if path.endswith("/chat/completions"):
            self.gate.wait(600)
        self.requests.append({"path": path, "body": body})
        hang = self._take("hang_next")
        if self._take("fail_next"):
            reply = self.fail_status, {"error": {"message": "scripted failure", "type": "server_error"}}
        elif path.endswith("/embeddings"):
            reply = self._embeddings(body)
        elif path.endswith("/chat/completions"):
            reply = self._chat(body)
        else:
            reply = 404, {"error": {"message": f"no route {path}"}}
        if hang:
            time.sleep(self.hang_s)
        if self.delay_s:
            time.sleep(self.delay_s)
        return reply

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dim = self.dim + 1 if self._take("wrong_dim_next") else self.dim
        as_base64 = body.get("encoding_format") == "base64" and not self.floats_only

        def encoded(vector: list[float]) -> str | list[float]:  # OpenAI: base64 of little-endian float32
            return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode() if as_base64 else vector

        data = [
            {"object": "embedding", "index": i, "embedding": encoded(fake_embedding(t, dim))}
            for i, t in enumerate(texts)
        ]
        return 200, {
            "object": "list",
            "data": data,
            "model": body.get("model", "fake"),
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }

    def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        refused = self._refusal(body)
        if refused is not None:
            return refused
        reply = self._next_reply(body)
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        finish = "stop"
        if isinstance(reply, dict):
            message = {"role": "assistant", "content": reply.get("content")}
            message |= {k: reply[k] for k in ("reasoning_content", "reasoning") if k in reply}
            finish = reply.get("finish_reason", "stop")
        content = str(message.get("content") or "")
        reasoning = approx_tokens(" ".join(str(message.get(k) or "") for k in ("reasoning_content", "reasoning")))
        messages = body.get("messages") or []
        prompt_text = " ".join(_message_text(m) for m in messages)
        prompt = approx_tokens(prompt_text)
        completion = approx_tokens(content) + reasoning
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
        usage["total_tokens"] = prompt + completion
        if self.prefix_cache:
            common = self._common(json.dumps(body.get("response_format"), sort_keys=True), _flat(messages), prompt)
            cached = _cacheable(common, self.prefix_cache_min, self.prefix_cache_block)
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
            # ... and what OpenAI's rule would have cached, for benches run with the default rule
            self.count(cached_prompt_tokens=cached, cached_prompt_tokens_openai_rule=_cacheable(common, 1024, 128))
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        self.count(prompt_tokens=prompt, completion_tokens=completion, prompt_chars=len(prompt_text))
        return 200, {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": usage,
        }

    def _refusal(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The scripted refusals, in a server's order: the chat template, then parameters, then the format."""
        fmt = (body.get("response_format") or {}).get("type")
        if self.refuse_system_role and any(m.get("role") == "system" for m in body.get("messages") or []):
            status, text = self.refuse_system_role
            return status, ({"error": {"message": text, "type": "invalid_request_error"}} if text else {})
        for param, (status, text) in self.refuse_param.items():
            if param in body:
                error = {"message": text, "type": "invalid_request_error", "param": param, "code": "unsupported"}
                return status, {"error": error}
        if self.reject_json_schema is not None and fmt == "json_schema":
            # Shaped like llama.cpp's refusal; the text must never reach memserver's API clients.
            return self.reject_json_schema, {"error": {"message": "SECRET-PROVIDER-TEXT: json_schema unsupported"}}
        if fmt in self.refuse_format:
            status, text = self.refuse_format[fmt]
            error = {"message": text, "type": "invalid_request_error", "param": "response_format"}
            return status, {"error": error}
        return None

    def _common(self, fmt: str, flat: str, prompt_tokens: int) -> int:
        """Tokens of the longest prefix this prompt shares with a recent one (then this one is remembered)."""
        with self._lock:
            common = max((_common_prefix(flat, f) for k, f in self._recent if k == fmt), default=0)
            self._recent = [*self._recent[-63:], (fmt, flat)]
        return min(approx_tokens(_ROLE_MARK.sub(" ", flat[:common])), prompt_tokens)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            queued = self.chat_replies.pop(0) if self.chat_replies else None
        if queued is not None:
            return queued
        if self.chat_script is not None:
            return self.chat_script(body)
        if self.mem0_echo and _is_mem0_prompt(body):
            return mem0_echo_extractor(body)
        if self.qa_echo and (reply := qa_reply(body)) is not None:
            return reply
        if self.echo:
            return echo_extractor(body, heuristic_graph=self.heuristic_graph)
        return "{}"

    def embedding_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/embeddings")]

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]


def echo_extractor(body: dict[str, Any], *, heuristic_graph: bool = False) -> str:
    """An extraction reply with one ADD fact per message of the requested speaker, citing its own index.

    It reads memserver's prompt format (pipeline/prompts/extract.py): the "Extract facts stated by:" line and the
    "[n] role (name): text" lines under "New messages:" (continuation lines are indented). A follow-up prompt
    ("Facts to reconcile:", one JSON fact per line) is answered with those facts as ADDs.

    With graph memory on (the system prompt says "Graph memory is on"), a message of the form
    "Source relationship words Target." (two capitalised names around lower-case words, e.g. "Maria works
    at Acme.") also gives its fact the relation (Source, relationship_words, Target). With `heuristic_graph`,
    any other "Speaker: text" message (LoCoMo's turns) gives (Speaker, mentions, Name) for each name of the
    text (`heuristic_mentions`): heuristic entities for benches, NOT what a model would extract.
    """
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    prompt = _message_text(users[-1]) if users else ""
    if "\nFacts to reconcile:\n" in prompt:  # a follow-up prompt: every listed fact stays an ADD
        listed = prompt.split("\nFacts to reconcile:\n", 1)[1].splitlines()
        return json.dumps({"facts": [{**json.loads(line), "action": "ADD"} for line in listed if line.strip()]})
    stated_by = re.search(r"^Extract facts stated by: ([a-z, ]+)", prompt, re.MULTILINE)
    speaker = "user" if stated_by is None or "user" in stated_by.group(1) else "assistant"
    conversation = prompt.split("\nNew messages:\n", 1)[1] if "\nNew messages:\n" in prompt else ""
    blocks: list[tuple[int, str, str]] = []  # (index, role, text)
    for line in conversation.splitlines():
        match = _MESSAGE_LINE.match(line)
        if match:
            blocks.append((int(match.group(1)), match.group(2), match.group(3).strip()))
        elif line.startswith("    ") and blocks:  # a continuation line of the previous message
            index, role, text = blocks[-1]
            blocks[-1] = (index, role, f"{text} {line.strip()}")
    # (in the system message, or in the first user message when the server refuses the system role)
    graph = any("Graph memory is on" in _message_text(m) for m in body.get("messages") or [])
    facts = [
        {"text": text, "speaker": speaker, "sources": [index], "categories": [], "action": "ADD"}
        | (
            {"relations": _echo_relations(text) or (heuristic_mentions(text) if heuristic_graph else [])}
            if graph
            else {}
        )
        for index, role, text in blocks
        if role == speaker and text
    ]
    return json.dumps({"facts": facts})


_MEM0_NEW_MESSAGES = "## New Messages\n"
_MEM0_ROLE_LINE = re.compile(r"^(user|assistant|system): (.*)$")


def _is_mem0_prompt(body: dict[str, Any]) -> bool:
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    return bool(users) and _MEM0_NEW_MESSAGES in _message_text(users[-1])


def mem0_echo_extractor(body: dict[str, Any]) -> str:
    """Mem0 OSS's extraction reply, one memory per user message of the "## New Messages" section.

    Mem0 2.2.x renders new messages as "role: content" lines (mem0.memory.utils.parse_messages; a message's
    further lines follow unprefixed) and parses `{"memory": [{"id": "0", "text": ...}, ...]}`
    (Memory._add_to_vector_store). Only user messages become memories, as memserver's echo does for an add
    with a user_id, so both systems store the same texts.
    """
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    prompt = _message_text(users[-1]) if users else ""
    section = prompt.split(_MEM0_NEW_MESSAGES, 1)[1].split("\n\n## ", 1)[0] if _MEM0_NEW_MESSAGES in prompt else ""
    messages: list[tuple[str, str]] = []  # (role, text)
    for line in section.splitlines():
        match = _MEM0_ROLE_LINE.match(line)
        if match:
            messages.append((match.group(1), match.group(2)))
        elif messages and line.strip():
            role, text = messages[-1]
            messages[-1] = (role, f"{text}\n{line}")
    texts = [text.strip() for role, text in messages if role == "user" and text.strip()]
    return json.dumps({"memory": [{"id": str(i), "text": t} for i, t in enumerate(texts)]})


_RELATION_TEXT = re.compile(r"^([A-Z][\w-]*) ([a-z][a-z ]*?) ([A-Z][\w-]*)\.?$")


def _relations(text: str, heuristic_graph: bool) -> list[dict[str, str]]:
    return _echo_relations(text) or (heuristic_mentions(text) if heuristic_graph else [])


def _echo_relations(text: str) -> list[dict[str, str]]:
    match = _RELATION_TEXT.match(text.strip())
    if not match:
        return []
    return [{"source": match.group(1), "relationship": match.group(2), "target": match.group(3)}]


_SPEAKER = re.compile(r"^([A-Z][\w-]*): (.+)$", re.S)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NOT_NAMES = frozenset(
    ["I", "I'm", "I've", "I'll", "I'd", "OK", "Ok", "Oh", "Hey", "Hi", "Yes", "Yeah", "No", "Wow", "Thanks", "Thank"]
)


def heuristic_mentions(text: str) -> list[dict[str, str]]:
    """Heuristic entities of a "Speaker: text" message: (Speaker, mentions, Name) for each run of capitalised
    words of the text that does not start a sentence ("Caroline: I went to the LGBTQ support group in New
    York." -> LGBTQ, New York), possessive and punctuation stripped, a few interjections and "I" skipped.

    Deterministic and crude on purpose: it gives graph-aware search a graph to walk on LoCoMo without a
    model; it is not what an LLM would extract (no types, no relationships but `mentions`).
    """
    match = _SPEAKER.match(text.strip())
    if not match:
        return []
    speaker, body = match.group(1), match.group(2)
    names: list[str] = []
    for sentence in _SENTENCE.split(body):
        words = [w.strip('.,;:!?"()[]') for w in sentence.split()]
        run: list[str] = []
        for i, word in enumerate([*words, ""]):
            w = word[:-2] if word.endswith(("'s", "’s")) else word
            if i > 0 and w[:1].isupper() and w not in _NOT_NAMES:
                run.append(w)
                if w == word:  # a possessive ends the name
                    continue
            if run:
                name = " ".join(run)
                if name != speaker and name not in names:
                    names.append(name)
                run = []
    return [{"source": speaker, "relationship": "mentions", "target": n} for n in names]


@contextmanager
def running(fake: FakeOpenAI | None = None, port: int = 0) -> Iterator[FakeOpenAI]:
    fake = fake or FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if fake.keep_alive else "HTTP/1.0"
        # Headers and body leave in two writes: without TCP_NODELAY a kept-alive connection could hold the
        # body back until the client's delayed ACK of the headers (up to 40 ms on Linux).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            started = time.perf_counter()  # the request line and headers are read: the fake's time starts
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, payload = fake.handle(self.path, json.loads(raw or b"{}"))
            data = json.dumps(payload).encode()
            # Counted before the reply leaves: a client that reads /v1/_stats right after its call sees it.
            elapsed_ms = (time.perf_counter() - started) * 1000
            if self.path.endswith("/chat/completions"):
                fake.count(requests=1, chat_requests=1, chat_handling_ms=elapsed_ms)
            elif self.path.endswith("/embeddings"):
                fake.count(requests=1, embedding_requests=1, embedding_handling_ms=elapsed_ms)
            else:
                fake.count(requests=1)
            self._send(status, data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/_stats"):
                self._send(200, json.dumps(fake.stats_snapshot()).encode())
            else:
                self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode())

        def _send(self, status: int, data: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def embedder_env(fake: FakeOpenAI, *, api_key: str | None = None, **extra: str) -> dict[str, str]:
    """A memserver's settings that make `fake` its embedder (the OpenAI-compatible provider), plus `extra`."""
    env = {
        "MEMSERVER_EMBEDDER__PROVIDER": "openai",
        "MEMSERVER_EMBEDDER__BASE_URL": fake.url,
        "MEMSERVER_EMBEDDER__MODEL": "fake-embedding",
    }
    if api_key is not None:
        env["MEMSERVER_EMBEDDER__API_KEY"] = api_key
    return env | extra


@contextmanager
def fake_embedder_server(
    database_url: str, log: Path, *, hang_s: float = 5.0, api_key: str | None = None, **env: str
) -> Iterator[tuple[LiveServer, FakeOpenAI]]:
    """A memserver whose embedder is a fresh fake (384-d, `hang_s` per `hang_next` request), with the settings
    `env`; yields (server, fake): a test scripts the fake's faults (`fail_next`, `hang_next`, ...) between calls."""
    with (
        running(FakeOpenAI(dim=384, hang_s=hang_s)) as fake,
        served(database_url, log, **embedder_env(fake, api_key=api_key, **env)) as server,
    ):
        yield server, fake


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted (the benches start this as a process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--dim", type=int, default=384, help="embedding dimension")
    parser.add_argument("--echo", action="store_true", help="answer chat completions with the echo extractor")
    parser.add_argument(
        "--mem0-echo", action="store_true", help="answer Mem0 OSS's extraction prompt: one memory per user message"
    )
    parser.add_argument(
        "--heuristic-graph",
        action="store_true",
        help="with --echo and graph on: (speaker, mentions, name) relations for the names of 'Speaker: text' turns",
    )
    parser.add_argument("--keep-alive", action="store_true", help="HTTP/1.1 persistent connections")
    parser.add_argument("--qa-echo", action="store_true", help="answer and judge bench.locomo_qa's prompts")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before every answer (a slow LLM)")
    parser.add_argument("--reject-json-schema", type=int, default=None, help="status for json_schema requests")
    parser.add_argument(
        "--prefix-cache", action="store_true", help="report usage.prompt_tokens_details.cached_tokens (prefix reuse)"
    )
    parser.add_argument("--prefix-cache-min", type=int, default=0, help="fewest cached tokens (OpenAI: 1024)")
    parser.add_argument("--prefix-cache-block", type=int, default=1, help="cached tokens per block (OpenAI: 128)")
    args = parser.parse_args(argv)
    fake = FakeOpenAI(
        dim=args.dim,
        echo=args.echo,
        mem0_echo=args.mem0_echo,
        heuristic_graph=args.heuristic_graph,
        qa_echo=args.qa_echo,
        keep_alive=args.keep_alive,
        delay_s=args.delay_ms / 1000,
        reject_json_schema=args.reject_json_schema,
        prefix_cache=args.prefix_cache,
        prefix_cache_min=args.prefix_cache_min,
        prefix_cache_block=args.prefix_cache_block,
    )
    with running(fake, port=args.port):
        sys.stdout.write(f"fake OpenAI server on {fake.url}\n")
        sys.stdout.flush()
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
