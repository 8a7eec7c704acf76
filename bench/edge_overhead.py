"""What the HTTP edge costs per request: the middleware every request passes, around a trivial ASGI app.

    python -m bench.edge_overhead [--requests 20000] [--rounds 7] [--against OLDER_EDGE.py]

No server and no socket: each round drives the same requests (a GET of one memory and a POST search with a
small JSON body, alternately) straight through the bare app and through the edge around it, back to back, and
the overhead is the difference per request. The inner app does what FastAPI's router leaves for the edge to
see: it reads the body, names the matched route in the scope and sends a JSON response. Prints the min and the
median overhead over the rounds (the min is the least disturbed by other jobs on a shared machine) and writes
them to `bench/results/edge_overhead.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from memserver.domain.limits import Limits

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps({"query": "where does alice live?", "filters": {"user_id": "alice"}, "top_k": 10}).encode()
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"python-httpx/0.28.1"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"connection", b"keep-alive"),
    (b"authorization", b"Token m0-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"),
]


def edge(app: ASGIApp, *, rate_limited: bool = False) -> ASGIApp:
    """The edge as `main.create_app` installs it, around `app`."""
    from memserver.api.middleware import edge_stack

    for middleware in reversed(edge_stack(Limits(), rate_limited=rate_limited)):
        app = middleware.cls(app, *middleware.args, **middleware.kwargs)
    return app


def older_edge(path: Path, app: ASGIApp) -> ASGIApp:
    """An older edge, from a copy of the module that held it: one class `EdgeMiddleware(app, limits=...)`
    (`api/http.py` up to the commit that split it: `git show 5040996:src/memserver/api/http.py`)."""
    spec = importlib.util.spec_from_file_location("edge_overhead_older", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wrapped: ASGIApp = module.EdgeMiddleware(app, limits=Limits())
    return wrapped


class _Route:
    def __init__(self, path: str) -> None:
        self.path = path


GET_ROUTE, SEARCH_ROUTE = _Route("/v1/memories/{memory_id}"), _Route("/v3/memories/search")
RESPONSE = b'{"id":"5b0f2d8e-6a3c-4c53-9a55-0e6b7f0c1d2e","memory":"Alice lives in Lisbon."}'
START_HEADERS = [(b"content-length", str(len(RESPONSE)).encode()), (b"content-type", b"application/json")]


async def inner(scope: Scope, receive: Receive, send: Send) -> None:
    """A route: read the whole body, name the route, answer JSON."""
    more = scope["method"] == "POST"
    while more:
        message = await receive()
        more = message.get("more_body", False)
    scope["route"] = SEARCH_ROUTE if scope["method"] == "POST" else GET_ROUTE
    await send({"type": "http.response.start", "status": 200, "headers": list(START_HEADERS)})
    await send({"type": "http.response.body", "body": RESPONSE})


def _scope(i: int) -> Scope:
    if i % 2:
        path, method, headers = "/v3/memories/search/", "POST", [*HEADERS, (b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(BODY)).encode()))
    else:
        path, method, headers = "/v1/memories/5b0f2d8e-6a3c-4c53-9a55-0e6b7f0c1d2e/", "GET", HEADERS
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _drive(app: ASGIApp, n: int) -> float:
    """Seconds to serve n requests through `app`, one after another."""
    request = {"type": "http.request", "body": BODY, "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: Any) -> None:
        return None

    scopes = [_scope(i) for i in range(n)]
    gc.collect()
    started = time.perf_counter()
    for scope in scopes:
        await app(scope, receive, send)
    return time.perf_counter() - started


async def measure(stacks: dict[str, ASGIApp], requests: int, rounds: int) -> dict[str, Any]:
    """Each round: the bare app, then every stack, back to back; the overhead is a stack's time minus the bare
    app's of the same round."""
    for app in [inner, *stacks.values()]:
        await _drive(app, 2000)  # warm up: label children, code paths
    overheads: dict[str, list[float]] = {name: [] for name in stacks}
    bare_us = []
    for _ in range(rounds):
        bare = await _drive(inner, requests)
        bare_us.append(bare / requests * 1e6)
        for name, app in stacks.items():
            overheads[name].append((await _drive(app, requests) - bare) / requests * 1e6)
    return {
        "requests_per_round": requests,
        "rounds": rounds,
        "bare_us_median": round(statistics.median(bare_us), 2),
        "overhead_us": {
            name: {
                "min": round(min(values), 2),
                "median": round(statistics.median(values), 2),
                "rounds": [round(x, 2) for x in values],
            }
            for name, values in overheads.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per round (half GET, half POST)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--against", type=Path, help="an older edge module to measure in the same rounds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "edge_overhead.json")
    args = parser.parse_args()
    stacks = {"edge": edge(inner), "edge, rate limited": edge(inner, rate_limited=True)}
    if args.against:
        stacks[f"older: {args.against}"] = older_edge(args.against, inner)
    load_before = os.getloadavg()[0]
    result = asyncio.run(measure(stacks, args.requests, args.rounds))
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(f"overhead per request ({args.rounds} rounds of {args.requests}; bare app {result['bare_us_median']} us):")
    for name, o in result["overhead_us"].items():
        print(f"  {name:40s} min {o['min']:6.2f} us   median {o['median']:6.2f} us")
    print(f"load average {result['load_average'][0]} -> {result['load_average'][1]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
