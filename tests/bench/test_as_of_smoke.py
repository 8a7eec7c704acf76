"""CI smoke run of the `as_of` benchmark at a tiny size: it works end to end and writes its JSON, and the
states it times are the moments it names (the last instant, after every change, holds today's memories;
earlier ones fewer). No timing is asserted (numbers come from benchmark runs, bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def test_as_of_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "as_of.json"
    args = ["-m", "bench.as_of", "--n", "400", "--requests", "2", "--out", str(out)]
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data: dict[str, Any] = json.loads(out.read_text())
    load = data["load"]
    assert (load["memories_added"], load["updated"], load["deleted"]) == (400, 80, 20)
    assert load["memories_now"] == 380
    assert load["history_rows_with_vector"] == 100  # each text change and each delete keeps the vector it took
    then = [data["latency"][k]["memories_then"] for k in ("day 10", "day 50", "day 90", "day 99")]
    assert then[0] < then[1] < then[2] <= then[3] == 380  # the last instant follows every change: today
    assert data["latency"]["day 99"]["changed_since"] == 0
    assert then[0] <= 44  # 4 adds a day: days 0-10 at most
