"""What a phase costs: process CPU and memory, pg_stat_statements, and an optional py-spy profile."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import psutil


class CpuMeter:
    """CPU seconds of this process, the API process and every Postgres process, between two snapshots."""

    def __init__(self, server_pid: int, postmaster_pid: int | None):
        self.server = psutil.Process(server_pid)
        self.postmaster = psutil.Process(postmaster_pid) if postmaster_pid else None

    def _pg(self) -> dict[int, float]:
        if self.postmaster is None:
            return {}
        out = {}
        for p in [self.postmaster, *self.postmaster.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        return out

    def snapshot(self) -> dict[str, Any]:
        s = self.server.cpu_times()
        return {"client": time.process_time(), "server": s.user + s.system, "pg": self._pg()}

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any], ops: int) -> dict[str, float]:
        pg = sum(v - a["pg"].get(pid, 0.0) for pid, v in b["pg"].items())
        return {
            "client_cpu_ms_per_op": round(1000 * (b["client"] - a["client"]) / ops, 3),
            "server_cpu_ms_per_op": round(1000 * (b["server"] - a["server"]) / ops, 3),
            "postgres_cpu_ms_per_op": round(1000 * pg / ops, 3),
        }


def proc_status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class StatementStats:
    """pg_stat_statements of one database, read from a connection to another (so never counted)."""

    def __init__(self, conn: asyncpg.Connection, dbname: str):
        self.conn = conn
        self.dbname = dbname

    async def reset(self) -> None:
        await self.conn.execute("SELECT pg_stat_statements_reset()")

    async def collect(self, ops: int) -> dict[str, Any]:
        rows = await self.conn.fetch(
            "SELECT query, calls, total_plan_time, total_exec_time, rows FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) AND calls > 0 "
            "ORDER BY calls DESC, total_exec_time DESC",
            self.dbname,
        )
        calls = sum(r["calls"] for r in rows)
        plan = sum(r["total_plan_time"] for r in rows)
        exe = sum(r["total_exec_time"] for r in rows)
        return {
            "ops": ops,
            "statements_per_op": round(calls / ops, 3),
            "plan_ms_per_op": round(plan / ops, 3),
            "exec_ms_per_op": round(exe / ops, 3),
            "db_ms_per_op": round((plan + exe) / ops, 3),
            "statements": [
                {
                    "calls_per_op": round(r["calls"] / ops, 3),
                    "mean_plan_ms": round(r["total_plan_time"] / r["calls"], 3),
                    "mean_exec_ms": round(r["total_exec_time"] / r["calls"], 3),
                    "query": " ".join(r["query"].split())[:200],
                }
                for r in rows[:12]
            ],
        }


class Profiler:
    """py-spy on the API process during a phase (``--profile DIR``): collapsed stacks + top frames."""

    def __init__(self, out_dir: Path | None, pid: int, gil: bool = False):
        self.out_dir, self.pid, self.gil = out_dir, pid, gil
        self.proc: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None

    def start(self, name: str) -> None:
        spy = Path(sys.executable).with_name("py-spy")
        if self.out_dir is None or not spy.exists():
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / f"{name}.txt"
        cmd = [str(spy), "record", "-p", str(self.pid), "-r", "200", "--format", "raw", "-o", str(self.path)]
        self.proc = subprocess.Popen(
            cmd + (["--gil"] if self.gil else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)

    def stop(self) -> dict[str, Any] | None:
        if self.proc is None or self.path is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc = None
        return summarize_profile(self.path)


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares of the functions in py-spy's collapsed stacks."""
    if not path.exists():
        return {"file": str(path), "error": "no profile written"}
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")[1:]
        ]
        if frames:
            self_c[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    share = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "file": str(path),
        "samples": total,
        "self_pct": [[f, share(c)] for f, c in self_c.most_common(top)],
        "inclusive_pct": [[f, share(c)] for f, c in incl.most_common(top * 2)],
    }
