"""What the test suite and the benchmarks share:

- `harness.postgres`: `PostgresRun`, the embedded Postgres (pgvector) of one run in a throwaway directory;
- `harness.server`: `served(...)`, a real `memserver serve` on a `free_port()` for the length of a `with` block
  (`start_server` / `stop_server` where a test or bench restarts one on purpose);
- `harness.tenants`: `new_tenant`, an org + project + key straight in the database;
- `harness.sdk_envs`: the cached virtualenvs / npm directories holding the official Mem0 SDKs;
- `harness.stats`: percentiles and latency summaries;
- `harness.falkordb`: a FalkorDB server with a Bolt endpoint (the Neo4j graph mirror's tests).

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
