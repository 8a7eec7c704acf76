"""How long each console page takes to render in a large project: 10k memories over 100 users, 10k events,
2k graph relations on one entity, history spread over 90 days.

    .venv/bin/python -m bench.console_render            # 10k memories, 2k relations, 5 visits per page
    .venv/bin/python -m bench.console_render --check    # exit 1 when a page's median is over 1 000 ms
    .venv/bin/python -m bench.console_render --quick    # smoke size

Seeding: the memories through the API (verbatim v3 adds of 100 messages, so the embedder, entities and history
are the real ones), then in SQL as fixture data: the history back-dated over 90 days, 10k ADD events with LLM
usage, and the graph (COPY, as bench/graph.py does): one entity related to 2k others, each relation linked to a
real memory and its event, a quarter of them retired. Then Debian's Chromium visits each page once cold and
`--visits` times more. A visit is timed by the console itself: `route:start` is marked when the hash changes and
`view:<name>` is measured after the page's DOM is built and two animation frames have passed (layout and
paint), so a figure includes the API calls, JSON parsing, the graph layout, layout and paint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from playwright.async_api import async_playwright

from harness.postgres import PostgresRun, plain_url
from harness.server import served
from harness.tenants import new_tenant
from memserver.domain.relations import name_key

CHROMIUM = "/usr/bin/chromium"
RELATIONSHIPS = ["works_with", "knows", "lives_near", "studied_with", "plays_with", "manages", "visited", "likes"]


def log(msg: str) -> None:
    sys.stderr.write(f"[bench.console_render {datetime.now(UTC):%H:%M:%S}] {msg}\n")
    sys.stderr.flush()


def seed_memories(base: str, key: str, memories: int, users: int) -> None:
    per_user = memories // users
    with httpx.Client(base_url=base, headers={"Authorization": f"Token {key}"}, timeout=300) as c:
        for u in range(users):
            texts = [f"User {u} note {i}: errands, music, travel plans number {i * 7 % 97}." for i in range(per_user)]
            body = {"messages": [{"role": "user", "content": t} for t in texts], "user_id": f"user-{u}", "infer": False}
            r = c.post("/v3/memories/add/", json=body)
            r.raise_for_status()
            if u % 20 == 0:
                log(f"  {(u + 1) * per_user} memories")


async def seed_sql(url: str, project_id: uuid.UUID, events: int, relations: int) -> dict[str, Any]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(
            "UPDATE memory_history SET created_at = now() - (random() * interval '90 days') WHERE project_id = $1",
            project_id,
        )
        await conn.execute(
            """INSERT INTO events (id, project_id, event_type, status, payload, results, metadata, created_at,
                                   started_at, completed_at, latency_ms)
               SELECT gen_random_uuid(), $1, 'ADD', 'SUCCEEDED',
                      jsonb_build_object('messages', jsonb_build_array(jsonb_build_object('role', 'user',
                                         'content', 'Message number ' || g))),
                      '[]'::jsonb,
                      jsonb_build_object('llm_calls', 1, 'prompt_tokens', 800 + g % 50, 'completion_tokens', 60),
                      t, t, t + interval '1 second', 1000
               FROM generate_series(1, $2) g, LATERAL (SELECT now() - (g % 90) * interval '1 day' AS t) d""",
            project_id,
            events,
        )
        rows = await conn.fetch(
            "SELECT id, event_id FROM memories WHERE project_id = $1 AND user_id = 'user-0' ORDER BY seq", project_id
        )
        names = ["alice"] + [f"Person {i}" for i in range(relations)]
        await conn.copy_records_to_table(
            "graph_nodes",
            records=[(project_id, "user-0", n, name_key(n), "person", []) for n in names],
            columns=["project_id", "user_id", "name", "key", "type", "aliases"],
        )
        nodes = await conn.fetch("SELECT id, key FROM graph_nodes WHERE project_id = $1", project_id)
        ids = {r["key"]: r["id"] for r in nodes}
        rng = random.Random(1)
        now = datetime.now(UTC)
        rels = []
        for i in range(relations):
            memory = rows[i % len(rows)]
            valid = now - timedelta(days=rng.randrange(30, 730))
            retired = i % 4 == 0
            end = valid + timedelta(days=rng.randrange(1, 29)) if retired else None
            rels.append((uuid.uuid4(), project_id, "user-0", ids["alice"], RELATIONSHIPS[i % len(RELATIONSHIPS)],
                         ids[name_key(names[i + 1])], f"alice {RELATIONSHIPS[i % len(RELATIONSHIPS)]} Person {i}",
                         memory["id"], memory["event_id"], valid, end, valid, end))  # fmt: skip
        await conn.copy_records_to_table(
            "graph_relations",
            records=rels,
            columns=["id", "project_id", "user_id", "source_id", "relationship", "target_id", "fact", "memory_id",
                     "event_id", "valid_at", "invalid_at", "created_at", "expired_at"],
        )  # fmt: skip
        await conn.execute("ANALYZE")
        event = await conn.fetchval("SELECT id FROM events WHERE project_id = $1 LIMIT 1", project_id)
        replay = (now - timedelta(days=365)).isoformat()
        return {"memory_id": str(rows[0]["id"]), "event_id": str(event), "replay_at": replay}
    finally:
        await conn.close()


def pages(ids: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, view name, hash) of each page visited."""
    return [
        ("entities", "entities", "/entities"),
        ("memories *", "memories", "/memories?etype=user_id&eid=*"),
        ("search", "search", "/search?query=travel%20plans&etype=user_id&eid=user-0"),
        ("memory", "memory", f"/memory/{ids['memory_id']}"),
        ("events", "events", "/events"),
        ("event", "event", f"/event/{ids['event_id']}"),
        ("graph (2k relations)", "graph", "/graph?etype=user_id&eid=user-0&name=alice"),
        ("graph replay (?at=)", "graph", f"/graph?etype=user_id&eid=user-0&name=alice&at={ids['replay_at'][:10]}"),
        ("usage 90 days", "usage", "/usage?days=90"),
        ("usage 365 days", "usage", "/usage?days=365"),
        ("settings: project", "settings", "/settings/project"),
        ("settings: webhooks", "settings", "/settings/webhooks"),
        ("settings: access", "settings", "/settings/access"),
        ("settings: backup", "settings", "/settings/backup"),
    ]


async def until(page: Any, predicate: str, arg: Any = None) -> None:
    """Poll `predicate` (page.wait_for_function evaluates a string, which the console's CSP forbids)."""
    deadline = time.monotonic() + 60
    while not await page.evaluate(predicate, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(predicate)
        await asyncio.sleep(0.01)


async def visit_all(base: str, key: str, ids: dict[str, Any], visits: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        await page.goto(f"{base}/console")
        await page.get_by_label("API key").fill(key)
        await page.get_by_label("API key").press("Enter")
        await until(page, "() => document.body.dataset.ready === 'entities'")
        for label, view, route in pages(ids):
            times = []
            for n in range(visits + 1):
                sep = "&" if "?" in route else "?"
                await page.evaluate("() => { performance.clearMeasures(); document.body.dataset.ready = ''; }")
                await page.evaluate("(h) => { location.hash = h; }", f"#{route}{sep}visit={n}")
                done = "(v) => document.body.dataset.ready === v && performance.getEntriesByName('view:' + v).length"
                await until(page, done, view)
                ms = await page.evaluate("(v) => performance.getEntriesByName('view:' + v)[0].duration", view)
                times.append(ms)
                if view == "graph" and n == 0:  # the first visit lays the graph out (later visits reuse it)
                    layout = await page.evaluate(
                        "() => performance.getEntriesByName('graph:layout').map(e => e.duration)"
                    )
                    out[f"{label}: layout"] = {
                        "cold_ms": round(layout[0]) if layout else None,
                        "median_ms": 0,
                        "max_ms": 0,
                    }
            warm = times[1:]
            median = round(statistics.median(warm))
            out[label] = {"cold_ms": round(times[0]), "median_ms": median, "max_ms": round(max(warm))}
            log(f"{label}: {out[label]}")
        # the API's share: the main call of the slowest pages, timed from the page (fetch + JSON parse)
        for label, path in api_paths(ids).items():
            ms = [await page.evaluate(API_TIMING, path) for _ in range(visits)]
            out[f"API {label}"] = {"cold_ms": None, "median_ms": round(statistics.median(ms)), "max_ms": round(max(ms))}
            log(f"API {label}: {out[f'API {label}']}")
        await browser.close()
    return out


API_TIMING = """async (path) => {
  const t = performance.now();
  const r = await fetch(path, { headers: { Authorization: `Token ${sessionStorage.getItem("memserver.apiKey")}` } });
  await r.json();
  return performance.now() - t;
}"""


def api_paths(ids: dict[str, Any]) -> dict[str, str]:
    today = datetime.now(UTC).date()
    year = f"from={today - timedelta(days=364)}&to={today}&tz=UTC"
    return {
        "graph relations": "/v1/graph/entities/alice/relations/?user_id=user-0",
        "graph relations ?at=": f"/v1/graph/entities/alice/relations/?user_id=user-0&at={ids['replay_at'][:10]}",
        "usage 365 days": f"/v1/memserver/usage/?{year}",
        "memories *": "/v2/memories/?page=1&page_size=25",
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--memories", type=int, default=10_000)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--relations", type=int, default=2_000)
    p.add_argument("--visits", type=int, default=5, help="timed visits per page after the cold one")
    p.add_argument("--quick", action="store_true", help="smoke size: 1k memories, 200 relations, 2 visits")
    p.add_argument("--check", action="store_true", help="exit 1 when a page's median is over 1 000 ms")
    p.add_argument("--out", type=Path, default=Path("bench/results/console_render.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.memories, args.users, args.events, args.relations, args.visits = 1_000, 10, 1_000, 200, 2
    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    with PostgresRun("memserver-bench-console-") as run:
        url = run.migrate()
        project_id, key = asyncio.run(new_tenant(url, "bench", "console"))
        with served(url, run.workdir / "memserver.log") as server:
            t0 = time.perf_counter()
            log(f"adding {args.memories} memories through the API")
            seed_memories(server.url, key, args.memories, args.users)
            ids = asyncio.run(seed_sql(url, project_id, args.events, args.relations))
            result["seed_s"] = round(time.perf_counter() - t0, 1)
            log(f"seeded in {result['seed_s']} s; visiting")
            result["pages"] = asyncio.run(visit_all(server.url, key, ids, args.visits))
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    sys.stdout.write(f"{'page':<28}{'cold':>8}{'median':>8}{'max':>8}   (ms; load {result['loadavg_at_start']})\n")
    for label, r in result["pages"].items():
        sys.stdout.write(f"{label:<28}{r['cold_ms'] or '':>8}{r['median_ms']:>8}{r['max_ms']:>8}\n")
    slow = [label for label, r in result["pages"].items() if r["median_ms"] > 1000 and not label.startswith("API ")]
    if args.check and slow:
        sys.stdout.write(f"over 1 000 ms: {', '.join(slow)}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
