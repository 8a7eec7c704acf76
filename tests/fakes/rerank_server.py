"""A real reranking HTTP server on 127.0.0.1 that answers deterministically, in the three shapes servers use.

* `/v1/rerank`, `/v2/rerank` play Cohere (and Jina, vLLM, Infinity, LiteLLM): they require `query` and
  `documents` (strings), take `top_n`, and answer `{"id", "results": [{"index", "relevance_score"}], "meta"}`;
* `/voyage/v1/rerank` plays Voyage: `query`, `documents`, `top_k` (`top_n` is refused, as Voyage does); it
  answers `{"object": "list", "data": [{"index", "relevance_score"}], "model", "usage"}`;
* `/rerank` plays Hugging Face TEI: `query`, `texts`; it answers a bare list `[{"index", "score"}]`.

Results are sorted best first and cut to `top_n` / `top_k`. A request missing a required field, or sending
`documents` to TEI or `texts` to Cohere, is answered 422 as those servers do.

Scores come from `script(query, documents)` when set, else the default: the share of the query's words (more
than 2 letters, lower-cased) that the document contains. A script may answer an int instead of scores: that
HTTP status is answered (a scripted outage for one query). Knobs, each for the next N requests: `fail_next`
(answer `fail_status`), `hang_next` (sleep `hang_s` before answering: past a client's timeout), `malformed_next`
(a body that is not JSON); `delay_s` delays every answer; `api_key` set: a request without
`Authorization: Bearer <key>` gets 401. Every request is logged (`requests`: path, headers, body).

`GET /_stats` answers `{"requests", "handling_ms"}` (the server's own time from request line to reply), so a
bench can subtract the fake's time from a client's. Standalone (for benches):
`python -m tests.fakes.rerank_server --port N [--delay-ms D]`.

    fake = FakeReranker(script=lambda q, docs: [len(d) / 100 for d in docs])
    with running(fake):
        ...  # MEMSERVER_RERANK__URL=fake.url + "/v1/rerank"
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[str, list[str]], "list[float] | int"]
_WORD = re.compile(r"[a-z0-9]{3,}")


def overlap_scores(query: str, documents: list[str]) -> list[float]:
    """The default scoring: the share of the query's words each document contains."""
    words = set(_WORD.findall(query.lower()))
    return [round(len(words & set(_WORD.findall(d.lower()))) / max(1, len(words)), 6) for d in documents]


@dataclass
class FakeReranker:
    script: Script | None = None
    fail_next: int = 0
    fail_status: int = 503
    hang_next: int = 0
    hang_s: float = 5.0
    malformed_next: int = 0
    delay_s: float = 0.0
    api_key: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""  # the base URL, without a path: http://127.0.0.1:PORT
    _stats: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _take(self, name: str) -> bool:
        with self._lock:
            if getattr(self, name) > 0:
                setattr(self, name, getattr(self, name) - 1)
                return True
            return False

    def reset(self) -> None:
        """Back to the default scoring and no scripted faults (between tests of one module)."""
        with self._lock:
            self.script = None
            self.fail_next = self.hang_next = self.malformed_next = 0
            self.delay_s = 0.0
            self.requests.clear()

    def count(self, handling_ms: float) -> None:
        with self._lock:
            self._stats["requests"] = self._stats.get("requests", 0) + 1
            self._stats["handling_ms"] = self._stats.get("handling_ms", 0.0) + handling_ms

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {
                "requests": self._stats.get("requests", 0),
                "handling_ms": round(self._stats.get("handling_ms", 0), 3),
            }

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        """The reply is decided when the request arrives, then sent after any scripted wait (a hung request
        that wakes after its client gave up must not take a reply meant for a later one)."""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        self.requests.append({"path": path, "headers": headers, "body": body})
        hang = self._take("hang_next")
        if self._take("fail_next"):
            reply = self.fail_status, _json({"message": "scripted failure SECRET-RERANK-TEXT"})
        elif self._take("malformed_next"):
            reply = 200, b"<html>upstream proxy error</html>"
        elif self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            reply = 401, _json({"message": "invalid api token"})
        elif not isinstance(body, dict):
            reply = 400, _json({"message": "invalid JSON body"})
        else:
            reply = self._rerank(path.split("?", 1)[0].rstrip("/"), body)
        if hang:
            time.sleep(self.hang_s)
        if self.delay_s:
            time.sleep(self.delay_s)
        return reply

    def _rerank(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        shape = {"/v1/rerank": "cohere", "/v2/rerank": "cohere", "/voyage/v1/rerank": "voyage", "/rerank": "tei"}
        kind = shape.get(path)
        if kind is None:
            return 404, _json({"message": f"no route {path}"})
        docs_key, refused = ("texts", ("documents", "top_n")) if kind == "tei" else ("documents", ("texts",))
        if kind == "voyage":
            refused = ("texts", "top_n")
        query, docs = body.get("query"), body.get(docs_key)
        if not isinstance(query, str) or not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
            return 422, _json({"message": f"query (a string) and {docs_key} (strings) are required"})
        if any(k in body for k in refused):
            return 422, _json({"message": f"unknown field(s) {[k for k in refused if k in body]}"})
        scored = self.script(query, docs) if self.script is not None else overlap_scores(query, docs)
        if isinstance(scored, int):
            return scored, _json({"message": "scripted status"})
        ranked = sorted(enumerate(scored), key=lambda p: -p[1])
        limit = body.get("top_k" if kind == "voyage" else "top_n")
        if isinstance(limit, int) and kind != "tei":
            ranked = ranked[:limit]
        if kind == "tei":
            return 200, _json([{"index": i, "score": s} for i, s in ranked])
        items = [{"index": i, "relevance_score": s} for i, s in ranked]
        if kind == "voyage":
            return 200, _json(
                {"object": "list", "data": items, "model": body.get("model"), "usage": {"total_tokens": 1}}
            )
        return 200, _json({"id": str(uuid.uuid4()), "results": items, "meta": {"billed_units": {"search_units": 1}}})


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@contextmanager
def running(fake: FakeReranker | None = None, port: int = 0) -> Iterator[FakeReranker]:
    fake = fake or FakeReranker()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers: a client reuses its connection
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            started = time.perf_counter()
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, data = fake.handle(self.path, headers, raw)
            fake.count((time.perf_counter() - started) * 1000)  # before the reply leaves: /_stats sees it
            self._send(status, data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/_stats":
                self._send(200, _json(fake.stats()))
            else:
                self._send(404, _json({"message": f"no route {self.path}"}))

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
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted (the benches start this as a process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before every answer (a slow reranker)")
    args = parser.parse_args(argv)
    with running(FakeReranker(delay_s=args.delay_ms / 1000), port=args.port) as fake:
        sys.stdout.write(f"fake rerank server on {fake.url} (/v1/rerank, /v2/rerank, /voyage/v1/rerank, /rerank)\n")
        sys.stdout.flush()
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
