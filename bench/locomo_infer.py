"""LoCoMo-ER mode B (infer=true): each session's exchanges added through the LLM, events awaited, and which
evidence turns the stored memories cover (through their provenance)."""

from __future__ import annotations

import asyncio
import collections
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.locomo_data import exchanges
from harness.stats import nearest_rank

Covers = Callable[[dict[str, Any]], set[str]]


# ----------------------------------------------------------------------------------------------
# mode B: infer=true, two-message exchanges, scored by provenance
# ----------------------------------------------------------------------------------------------
async def wait_event(client: httpx.AsyncClient, event_id: str, timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while time.monotonic() < deadline:
        r = await client.get(f"/v1/event/{event_id}/")
        r.raise_for_status()
        event = r.json()
        if event["status"] in ("SUCCEEDED", "FAILED"):
            return dict(event)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)
    raise TimeoutError(f"event {event_id} did not finish in {timeout_s} s")


async def ingest_inferred(
    client: httpx.AsyncClient, conv: dict[str, Any], user: str, graph: bool = False
) -> list[dict[str, Any]]:
    """Each exchange as one infer=true add through v3, in order; each event awaited before the next add
    (the next add must see the memories this one made). Returns one record per add."""
    records = []
    for ex in exchanges(conv["turns"]):
        t0 = time.perf_counter()
        r = await client.post(
            "/v3/memories/add/",
            json={
                "messages": ex["messages"],
                "user_id": user,
                "infer": True,
                "metadata": {"dia_ids": ex["dia_ids"], "session": ex["session"]},
                "timestamp": ex["ts"],
                **({"enable_graph": True} if graph else {}),
            },
        )
        r.raise_for_status()
        event = await wait_event(client, r.json()["event_id"])
        meta = event.get("metadata") or {}
        ops = collections.Counter(str(e.get("event")) for e in event.get("results") or [])
        records.append(
            {
                "event_id": r.json()["event_id"],
                "dia_ids": ex["dia_ids"],
                "status": event["status"],
                "error": event.get("error"),
                "seconds": round(time.perf_counter() - t0, 3),
                "llm_calls": meta.get("llm_calls", 0),
                "prompt_tokens": meta.get("prompt_tokens", 0),
                "completion_tokens": meta.get("completion_tokens", 0),
                "second_call": bool(meta.get("second_call")),
                "ops": dict(ops),
            }
        )
    return records


def provenance_covers(adds: dict[str, list[str]]) -> Covers:
    """Mode B: the turns a memory came from: each provenance source's message indices, mapped through the
    dia_ids of the add (event) that carried them; the memory's own metadata (the first add's dia_ids) when a
    source's event is unknown."""

    def covers(hit: dict[str, Any]) -> set[str]:
        out: set[str] = set()
        fallback = (hit.get("metadata") or {}).get("dia_ids") or []
        for src in (hit.get("provenance") or {}).get("sources") or []:
            dia_ids = adds.get(str(src.get("event_id")), fallback)
            out.update(dia_ids[i] for i in src.get("message_indices") or [] if 0 <= i < len(dia_ids))
        return out

    return covers


async def stored_coverage(client: httpx.AsyncClient, user: str, covers: Covers) -> tuple[int, set[str]]:
    """All the scope's memories (listed page by page): how many, and the turns their provenance covers."""
    count, turns, page = 0, set(), 1
    while True:
        r = await client.post("/v3/memories/", json={"filters": {"user_id": user}, "page": page, "page_size": 200})
        r.raise_for_status()
        rows = r.json()["results"]
        count += len(rows)
        for row in rows:
            turns |= covers(row)
        if len(rows) < 200 or not r.json().get("next"):
            return count, turns
        page += 1


def inferred_summary(records: list[dict[str, Any]], n_turns: int, seconds: float) -> dict[str, Any]:
    done = [r for r in records if r["status"] == "SUCCEEDED"]
    ops: collections.Counter[str] = collections.Counter()
    for r in done:
        ops.update(r["ops"])
    live = ops["ADD"] - ops["DELETE"]
    return {
        "adds": len(records),
        "turns": n_turns,
        "failed": len(records) - len(done),
        "failures": [r["error"] for r in records if r["status"] != "SUCCEEDED"][:5],
        "seconds": round(seconds, 2),
        "adds_per_s": round(len(records) / seconds, 2) if seconds else None,
        "memory_events": dict(ops),
        "memories": live,
        "memories_per_turn": round(live / n_turns, 3) if n_turns else None,
        "llm_calls_per_add": round(statistics.fmean(r["llm_calls"] for r in done), 3) if done else None,
        "prompt_tokens_per_add": round(statistics.fmean(r["prompt_tokens"] for r in done), 1) if done else None,
        "completion_tokens_per_add": round(statistics.fmean(r["completion_tokens"] for r in done), 1) if done else None,
        "second_calls": sum(1 for r in done if r["second_call"]),
        "add_seconds_p50": nearest_rank([r["seconds"] for r in records], 50) if records else None,
    }
