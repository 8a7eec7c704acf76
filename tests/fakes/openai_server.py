"""A real OpenAI-compatible HTTP server on 127.0.0.1 that answers deterministically.

`/v1/embeddings` returns a unit vector derived from a hash of each input text;
`/v1/chat/completions` returns scripted replies in order. Tests can make the next N requests fail
(HTTP 500), hang (for timeouts) or return the wrong dimension, and can read what was requested.
It is the one stand-in the test suite allows: the real `openai` SDK talks to it over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


def fake_embedding(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(dim)
    return (vec / np.linalg.norm(vec)).astype(np.float32).tolist()


@dataclass
class FakeOpenAI:
    dim: int = 384
    fail_next: int = 0  # answer HTTP 500 to this many requests
    hang_next: int = 0  # sleep past the client's timeout for this many requests
    hang_s: float = 5.0
    wrong_dim_next: int = 0
    chat_replies: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _take(self, name: str) -> bool:
        with self._lock:
            if getattr(self, name) > 0:
                setattr(self, name, getattr(self, name) - 1)
                return True
            return False

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append({"path": path, "body": body})
        if self._take("hang_next"):
            time.sleep(self.hang_s)
        if self._take("fail_next"):
            return 500, {"error": {"message": "scripted failure", "type": "server_error"}}
        if path.endswith("/embeddings"):
            inputs = body.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            dim = self.dim + 1 if self._take("wrong_dim_next") else self.dim
            data = [
                {"object": "embedding", "index": i, "embedding": fake_embedding(t, dim)} for i, t in enumerate(texts)
            ]
            return 200, {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake"),
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        if path.endswith("/chat/completions"):
            content = self.chat_replies.pop(0) if self.chat_replies else "{}"
            return 200, {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        return 404, {"error": {"message": f"no route {path}"}}

    def embedding_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/embeddings")]


@contextmanager
def running(fake: FakeOpenAI | None = None) -> Iterator[FakeOpenAI]:
    fake = fake or FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, payload = fake.handle(self.path, json.loads(raw or b"{}"))
            data = json.dumps(payload).encode()
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
