"""The same adds through the official Python SDK (mem0ai 2.2.1), in its own venv and process."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.speed.config import log
from harness.stats import latency_summary

SDK_SCRIPT = r"""
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from mem0 import MemoryClient

spec = json.load(open(sys.argv[1]))
client = MemoryClient(api_key=spec["key"], host=spec["host"])
client.add([{"role": "user", "content": "SDK warm-up fact."}], user_id="sdk-warmup", infer=False)
out = []
for level in spec["levels"]:
    jobs, c = level["jobs"], level["concurrency"]
    lat = [0.0] * len(jobs)
    res = [None] * len(jobs)
    errors = []

    def one(i):
        text, user = jobs[i]
        t0 = time.perf_counter()
        try:
            res[i] = client.add([{"role": "user", "content": text}], user_id=user, infer=False)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        lat[i] = time.perf_counter() - t0

    cpu0, t_start = time.process_time(), time.perf_counter()
    if c == 1:
        for i in range(len(jobs)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=c) as pool:
            list(pool.map(one, range(len(jobs))))
    wall, cpu = time.perf_counter() - t_start, time.process_time() - cpu0
    bad = sum(1 for i, r in enumerate(res) if not r or [x.get("event") for x in r.get("results", [])] != ["ADD"]
              or r["results"][0].get("memory") != jobs[i][0])
    out.append({"concurrency": c, "adds": len(jobs), "wall_s": wall, "client_cpu_s": cpu,
                "latencies_s": lat, "errors": len(errors), "error_samples": errors[:3], "bad_results": bad})
json.dump({"levels": out}, open(sys.argv[2], "w"))
"""


def sdk_python() -> str | None:
    try:
        from harness.sdk_envs import python_sdk

        return str(python_sdk("2.2.1"))
    except Exception as exc:  # the SDK venv cannot be built here: skip that part, say so
        log(f"SDK venv unavailable ({type(exc).__name__}: {exc}); skipping the SDK ingest")
        return None


def run_sdk_ingest(
    py: str, workdir: Path, url: str, key: str, levels: list[tuple[int, list[tuple[str, str]]]]
) -> list[dict[str, Any]]:
    script = workdir / "sdk_ingest.py"
    script.write_text(SDK_SCRIPT)
    spec = workdir / "sdk_spec.json"
    out = workdir / "sdk_out.json"
    spec.write_text(json.dumps({"host": url, "key": key, "levels": [{"concurrency": c, "jobs": j} for c, j in levels]}))
    mem0_dir = workdir / "mem0-home"
    mem0_dir.mkdir(exist_ok=True)
    env = {**os.environ, "MEM0_TELEMETRY": "False", "MEM0_DIR": str(mem0_dir), "HOME": str(mem0_dir)}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([py, str(script), str(spec), str(out)], env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"SDK ingest failed:\n{proc.stderr[-3000:]}")
    results = []
    for r in json.loads(out.read_text())["levels"]:
        results.append(
            {
                "concurrency": r["concurrency"],
                "adds": r["adds"],
                "wall_s": round(r["wall_s"], 3),
                "adds_per_s": round(r["adds"] / r["wall_s"], 2),
                **latency_summary(r["latencies_s"]),
                "client_cpu_ms_per_op": round(1000 * r["client_cpu_s"] / r["adds"], 3),
                "errors": r["errors"],
                "error_samples": r["error_samples"],
                "bad_results": r["bad_results"],
            }
        )
    return results
