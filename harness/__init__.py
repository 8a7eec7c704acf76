"""What the test suite and the benchmarks share: run an embedded Postgres for a run, start and stop a real
`memserver serve` process on a free port, and the latency statistics.

It sits at the repository root, next to `tests/` and `bench/`, and is imported from there: pytest puts the root
on `sys.path` (`pythonpath = ["."]` in pyproject.toml) and the benchmarks run as modules from the root
(`python -m bench.speed`). It is not part of the `memserver` wheel, so the Docker image does not carry it.

`harness.stats` and this package's root use the standard library only: the Mem0 peer benchmark imports them
from its own virtualenv, where memserver is not installed.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
MODEL_CACHE = CACHE / "models"
