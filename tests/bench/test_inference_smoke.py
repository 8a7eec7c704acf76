"""CI smoke run of the inference-cost benchmark (benchmarks.md §1b) with 3 adds and no Mem0 peer: the script
starts its own Postgres, fake LLM and memserver, and every add costs one LLM call, writes one memory and is
counted on both sides (the fake's usage and memserver's own event metadata agree)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_inference_cost_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "inference_cost.json"
    res = subprocess.run(
        [sys.executable, "-m", "bench.inference_cost", "--n", "3", "--warmup", "1", "--no-peer", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads(out.read_text())
    ms = result["memserver"]
    assert [a["llm_calls"] for a in ms["adds"]] == [1, 1, 1]
    assert [a["memories_written"] for a in ms["adds"]] == [1, 1, 1]
    assert all(a["prompt_tokens"] > 0 and a["db_statements"] > 0 and a["own_ms"] > 0 for a in ms["adds"])
    events = ms["event_metadata"]
    assert events["events"] == events["expected"] == 4
    assert events["llm_calls"] == 4
    # what memserver recorded on its events (warm-up add included) is what the fake LLM counted
    assert events["prompt_tokens"] == ms["fake_llm_total"]["prompt_tokens"] > 0
    assert ms["fake_llm_total"]["chat_requests"] == 4
    assert "LLM calls per add" in res.stdout
