"""What both sides of the inference-cost benchmark share (standard library only: the Mem0 side imports it
from its own virtualenv)."""

from __future__ import annotations

import json
import statistics
import urllib.request
from typing import Any

from harness.stats import percentile

FAKE_KEYS = (
    "chat_requests",
    "embedding_requests",
    "prompt_tokens",
    "completion_tokens",
    "prompt_chars",
    "cached_prompt_tokens",
    "cached_prompt_tokens_openai_rule",
    "chat_handling_ms",
    "embedding_handling_ms",
)


def fake_stats(llm_base_url: str) -> dict[str, float]:
    """The fake LLM's counters (`GET <base>/_stats`): chat requests, summed usage, chat handling time."""
    with urllib.request.urlopen(f"{llm_base_url.rstrip('/')}/_stats", timeout=10) as r:
        return dict(json.loads(r.read()))


def fake_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after.get(k, 0) - before.get(k, 0), 3) for k in FAKE_KEYS}


def add_record(wall_s: float, cpu_s: float, fake: dict[str, float], statements: int, **extra: Any) -> dict[str, Any]:
    """One add's costs; `own_ms` = wall time minus the fake's handling of this add's provider requests (chat,
    and embeddings when the embedder is the fake's too: `--remote-embedder`)."""
    wall_ms = wall_s * 1000
    provider_ms = fake["chat_handling_ms"] + fake.get("embedding_handling_ms", 0.0)
    return {
        "wall_ms": round(wall_ms, 3),
        "llm_ms": round(fake["chat_handling_ms"], 3),
        "embedding_ms": round(fake.get("embedding_handling_ms", 0.0), 3),
        "own_ms": round(wall_ms - provider_ms, 3),
        "cpu_ms": round(cpu_s * 1000, 3),
        "llm_calls": int(fake["chat_requests"]),
        "prompt_tokens": int(fake["prompt_tokens"]),
        "completion_tokens": int(fake["completion_tokens"]),
        "prompt_chars": int(fake.get("prompt_chars", 0)),
        "cached_prompt_tokens": int(fake.get("cached_prompt_tokens", 0)),
        "cached_prompt_tokens_openai_rule": int(fake.get("cached_prompt_tokens_openai_rule", 0)),
        "db_statements": statements,
        **extra,
    }


def summarize(adds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-add medians, p95 and means of the records (the first add of a fresh scope is included)."""
    if not adds:
        return {}

    def col(key: str) -> list[float]:
        return [float(a[key]) for a in adds if a.get(key) is not None]

    out: dict[str, Any] = {"adds": len(adds)}
    for key in ("own_ms", "wall_ms", "llm_ms", "embedding_ms", "cpu_ms"):
        vals = col(key)
        out[f"{key}_p50"] = round(percentile(vals, 0.50), 2)
        out[f"{key}_p95"] = round(percentile(vals, 0.95), 2)
        out[f"{key}_mean"] = round(statistics.fmean(vals), 2)
    for key in ("llm_calls", "prompt_tokens", "prompt_chars", "completion_tokens", "db_statements", "memories_written"):
        vals = col(key)
        if vals:
            out[f"{key}_mean"] = round(statistics.fmean(vals), 2)
            out[f"{key}_p50"] = round(percentile(vals, 0.50), 2)
            out[f"{key}_max"] = max(vals)
    for key in ("db_ms", "db_round_trips_client", "sqlite_calls"):
        vals = col(key)
        if vals:
            out[f"{key}_mean"] = round(statistics.fmean(vals), 2)
    prompt = sum(col("prompt_tokens"))
    # The share of prompt tokens in a prefix the previous requests already sent (what vLLM and llama.cpp reuse),
    # and under OpenAI's rule (nothing below 1,024 common tokens, then 128-token blocks).
    out["cached_prefix_share"] = round(sum(col("cached_prompt_tokens")) / prompt, 3) if prompt else None
    rule = col("cached_prompt_tokens_openai_rule")
    out["cached_prefix_share_openai_rule"] = round(sum(rule) / prompt, 3) if prompt else None
    first = adds[0]
    out["first_add_prompt_tokens"] = first.get("prompt_tokens")
    out["adds_with_more_than_one_llm_call"] = sum(1 for a in adds if a.get("llm_calls", 0) > 1)
    out["adds_with_no_llm_call"] = sum(1 for a in adds if a.get("llm_calls", 0) == 0)
    return out


STATEMENTS_SQL = (
    "SELECT query, calls, total_plan_time + total_exec_time AS ms FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = {param}) AND calls > 0 "
    "ORDER BY calls DESC, total_exec_time DESC LIMIT 20"
)


def statement_breakdown(rows: list[tuple[str, int, float]], adds: int) -> list[dict[str, Any]]:
    """pg_stat_statements rows (query, calls, ms) since the reset before the measured adds, per add."""
    return [
        {
            "calls_per_add": round(calls / adds, 3),
            "mean_ms": round(ms / calls, 3),
            "query": " ".join(query.split())[:160],
        }
        for query, calls, ms in rows
    ]
