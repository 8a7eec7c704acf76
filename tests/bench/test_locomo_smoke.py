"""CI smoke run of the LoCoMo-ER benchmark on one conversation: the script works end to end
against a live server, and hybrid search beats both BM25 and dense-only on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_locomo_benchmark_smoke(live_server: str, tenant: tuple[str, str], tmp_path: Path) -> None:
    out = tmp_path / "locomo.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.locomo_recall",
            "--url",
            live_server,
            "--key",
            tenant[1],
            "--conversations",
            "conv-26",
            "--concurrency",
            "4",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads(out.read_text())
    assert result["meta"]["questions"] > 150
    pooled = {name: result[name]["metrics"]["1-4"]["frac@10"] for name in ("bm25", "hybrid", "semantic")}
    assert pooled["hybrid"] > pooled["bm25"]
    assert pooled["hybrid"] > pooled["semantic"]
    assert result["hybrid"]["latency_ms"]["c1"]["p95"] > 0
    assert result["ingest"]["turns"] == 419
    assert "frac@10" in res.stdout
