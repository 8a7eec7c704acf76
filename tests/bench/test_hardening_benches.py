"""CI smoke runs of the scale and soak benchmarks at tiny sizes: the scripts work end to end and write
their JSON. No timing is asserted (numbers come from benchmark runs, bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], out: Path) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, *args, "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data: dict[str, object] = json.loads(out.read_text())
    return data


def test_scale_benchmark_smoke(tmp_path: Path) -> None:
    args = ["-m", "bench.scale", "--n", "2000", "--users", "20", "--queries", "4", "--adds", "4", "--batch", "1000"]
    data = _run(args, tmp_path / "scale.json")
    assert data["n"] == 2000
    assert set(data["search_user"]) == {"hybrid", "dense"}  # type: ignore[arg-type]


def test_soak_benchmark_smoke(live_server: str, tenant: tuple[str, str], tmp_path: Path) -> None:
    args = ["-m", "bench.soak", "--url", live_server, "--key", tenant[1], "--duration", "4", "--interval", "2"]
    data = _run([*args, "--concurrency", "2", "--preload", "10"], tmp_path / "soak.json")
    assert data["requests"] > 0  # type: ignore[operator]
    assert data["errors"] == 0
