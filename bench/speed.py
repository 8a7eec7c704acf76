"""Speed benchmark (benchmarks.md §2): memserver against the open-source Mem0 library, in one run.

What it measures, on one private Postgres 18 + pgvector (the embedded wheel, pg_stat_statements loaded) that
holds two databases, one per system:

1. **Verbatim ingest** through HTTP: ``POST /v3/memories/add/`` with one user message and ``infer: false``,
   spread over ``--ingest-users`` users, at each ``--concurrency`` (default 1 and 8), with a lean asyncio
   HTTP/1.1 keep-alive client (raw sockets, Content-Length framing) so that the client's own CPU stays small
   on a 2-core machine; the same adds again through the official Python SDK (``mem0ai`` 2.2.1
   ``MemoryClient``, threads, in its own virtualenv and process). adds/s, p50/p95/p99 per add.
2. **Search latency** with the project loaded to each of ``--sizes`` memories (``--per-user`` memories per
   user): ``POST /v3/memories/search/`` ``{"query", "filters": {"user_id"}, "top_k": 10}``, default hybrid
   retrieval and ``"retrieval": "semantic"`` (dense only), at each ``--search-concurrency``: p50/p95/p99 ms.
   The load is a direct SQL bulk insert of the rows an add writes (memories with the embeddings of
   memserver's own local embedder, their ADD history and the user entities), then ``ANALYZE``.
3. **Database cost** per add and per search: pg_stat_statements deltas of memserver's database (reset before
   each measured phase, so the benchmark's bulk load is excluded): statements per operation and planning +
   execution ms per operation, statement by statement. CPU seconds of the client, the API process and
   Postgres per operation.
4. **Memory**: RSS of the API process right after startup (idle) and its peak (VmHWM) at the end.
5. **The Mem0 peer** in the same run: ``bench/mem0_peer.py`` in its own virtualenv against the second
   database, with the identical workload (the texts and queries are written to a file and replayed; the
   ingest texts, users, bulk-load users and (query, user) search pairs are the same on both sides), once out
   of the box and once with ``hnsw.iterative_scan=relaxed_order``. Ratios: memserver adds/s / Mem0 adds/s
   and Mem0 search p95 / memserver search p95.

    .venv/bin/python bench/speed.py                 # defaults: about 8 minutes on 2 cores (< 20)
    .venv/bin/python bench/speed.py --quick         # smoke size, under 2 minutes (CI)
    .venv/bin/python bench/speed.py --repeat 3      # medians of 3 complete runs
    .venv/bin/python bench/speed.py --no-peer --sizes 10000 --profile bench/results/profile

memserver runs with its embedding LRU cache disabled (``MEMSERVER_EMBEDDER__CACHE_SIZE=0``), because the
query set repeats (200 searches use ~70 distinct questions) and Mem0 has no such cache;
``--embedder-cache`` keeps memserver's default (4096 entries).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "src", ROOT, ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import asyncpg  # noqa: E402
import mem0_peer as peer  # noqa: E402  (workload generators: standard library only)
import orjson  # noqa: E402
import psutil  # noqa: E402

MODEL_CACHE = ROOT / ".cache" / "models"
PEER_SCRIPT = ROOT / "bench" / "mem0_peer.py"
PEER_ENV_SCRIPT = ROOT / "bench" / "mem0_peer_env.sh"
PEER_VENV_PY = ROOT / ".cache" / "bench" / "mem0-peer-venv" / "bin" / "python"
MEM0_DB = "mem0bench"
ITERATIVE = "-c hnsw.iterative_scan=relaxed_order"
PEER_MODES = {"default": None, "iterative": ITERATIVE}
SEARCH_MODES = ("hybrid", "semantic")

FULL = {"n": 2000, "sizes": "10000,100000", "queries": 200, "pool": 5000, "warmup": 20, "recall_checks": 20}
QUICK = {"n": 100, "sizes": "1000,3000", "queries": 40, "pool": 500, "warmup": 5, "recall_checks": 10}

TARGETS = {"ingest_ratio_c8": 10.0, "search_p95_ratio": 4.0, "hybrid_p95_100k_ms": 50.0}


def log(msg: str) -> None:
    print(f"[speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----------------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------------
def latency_summary(lat_s: list[float]) -> dict[str, float]:
    ms = [x * 1000.0 for x in lat_s]
    if not ms:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "p50_ms": round(peer.percentile(ms, 0.50), 2),
        "p95_ms": round(peer.percentile(ms, 0.95), 2),
        "p99_ms": round(peer.percentile(ms, 0.99), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "max_ms": round(max(ms), 2),
    }


# ----------------------------------------------------------------------------------------------------
# A lean HTTP/1.1 keep-alive client: one connection per worker, Content-Length framing.
# ----------------------------------------------------------------------------------------------------
class HttpConn:
    def __init__(self, host: str, port: int, key: str):
        self.host, self.port = host, port
        self.head = (
            f"Host: {host}:{port}\r\nAuthorization: Token {key}\r\nContent-Type: application/json\r\n"
            "Accept: application/json\r\nConnection: keep-alive\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def post(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(
            b"POST " + path + b" HTTP/1.1\r\n" + self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = -1
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            return status, b"".join(parts)
        return status, (await self.reader.readexactly(length)) if length > 0 else b""


async def http_run(
    base_url: str, key: str, path: str, bodies: list[bytes], concurrency: int
) -> tuple[list[float], list[tuple[int, bytes]], float]:
    """Send every body once, ``concurrency`` requests in flight; returns latencies, responses, wall time."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    conns = [HttpConn(host, int(port), key) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    n = len(bodies)
    lat = [0.0] * n
    out: list[tuple[int, bytes]] = [(0, b"")] * n
    todo = iter(range(n))
    bpath = path.encode()

    async def worker(conn: HttpConn) -> None:
        for i in todo:  # one shared iterator: each request is sent exactly once
            t0 = time.perf_counter()
            try:
                out[i] = await conn.post(bpath, bodies[i])
            except (OSError, asyncio.IncompleteReadError) as exc:
                out[i] = (-1, repr(exc).encode())
                await conn.close()
                await conn.open()
            lat[i] = time.perf_counter() - t0

    t_start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - t_start
    await asyncio.gather(*(c.close() for c in conns))
    return lat, out, wall


# ----------------------------------------------------------------------------------------------------
# Process CPU and memory, pg_stat_statements
# ----------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------
# Setup: Postgres, databases, tenant, server
# ----------------------------------------------------------------------------------------------------
def plain_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Stack:
    """The private Postgres (two databases) and a running `memserver serve`."""

    def __init__(self, workdir: Path, args: argparse.Namespace):
        from tests.conftest import free_port

        from memserver.storage.embedded import EmbeddedPostgres

        self.workdir = workdir
        self.args = args
        conf = ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track_planning = on"]
        self.pg = EmbeddedPostgres(workdir / "pg", port=free_port(), extra_conf=conf)
        self.server: Any = None
        self.url = ""

    def start_postgres(self) -> None:
        t0 = time.perf_counter()
        self.pg.start()
        self.url = self.pg.url()
        log(f"Postgres up on port {self.pg.port} ({time.perf_counter() - t0:.1f}s)")

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.pg.pgdata / "postmaster.pid").read_text().splitlines()[0])
        return None

    async def setup_databases(self) -> None:
        admin = await asyncpg.connect(plain_url(self.pg.url("postgres")))
        try:
            await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", MEM0_DB):
                await admin.execute(f"CREATE DATABASE {MEM0_DB}")
        finally:
            await admin.close()
        mem0 = await asyncpg.connect(plain_url(self.pg.url(MEM0_DB)))
        try:
            await mem0.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await mem0.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await mem0.close()

    def migrate(self) -> None:
        from memserver.storage import migrate

        migrate.upgrade(self.url, 384)

    async def tenant(self, name: str) -> tuple[uuid.UUID, str]:
        from memserver.services import tenants
        from memserver.storage.db import Database

        db = Database(self.url)
        try:
            pid, key = await tenants.create_tenant_with_key(db, "speed-bench", f"{name}-{time.time_ns()}")
            return uuid.UUID(str(pid)), key
        finally:
            await db.dispose()

    def start_server(self) -> None:
        from tests.conftest import start_server

        extra = {}
        if not self.args.embedder_cache:
            extra["MEMSERVER_EMBEDDER__CACHE_SIZE"] = "0"
        t0 = time.perf_counter()
        self.server = start_server(self.url, self.workdir / "memserver.log", **extra)
        log(f"memserver serve up at {self.server.url} (pid {self.server.proc.pid}, {time.perf_counter() - t0:.1f}s)")

    def stop_server(self) -> None:
        from tests.conftest import stop_server

        if self.server is not None:
            stop_server(self.server)
            self.server = None

    def mem0_url(self) -> str:
        return plain_url(self.pg.url(MEM0_DB))

    def stop(self) -> None:
        self.stop_server()
        self.pg.stop()


# ----------------------------------------------------------------------------------------------------
# Workload (identical to bench/mem0_peer.py's: see its docstring)
# ----------------------------------------------------------------------------------------------------
class Workload:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.levels = args.levels
        needed = len(self.levels) * args.n + args.pool
        if args.texts_file:
            data = json.loads(Path(args.texts_file).read_text())
            self.texts = [str(t) for t in (data if isinstance(data, list) else data["texts"])]
            queries = [] if isinstance(data, list) else [str(q) for q in data.get("queries", [])]
            self.queries = queries or peer.generate_queries(max(args.queries, 1), args.seed)
        else:
            self.texts = peer.generate_texts(needed, args.seed)
            self.queries = peer.generate_queries(max(args.queries, 1), args.seed)

    def text_at(self, i: int) -> str:
        return self.texts[i % len(self.texts)]

    def ingest_jobs(self, k: int, c: int, prefix: str = "ingest") -> list[tuple[str, str]]:
        """(text, user) of the k-th concurrency level: texts[k*N:(k+1)*N], user ingest-c{c}-u{i % users}."""
        n = self.args.n
        return [(self.text_at(k * n + i), f"{prefix}-c{c}-u{i % self.args.ingest_users:04d}") for i in range(n)]

    def pool_texts(self) -> list[str]:
        base = len(self.levels) * self.args.n
        return [self.text_at(base + i) for i in range(min(self.args.pool, max(self.args.sizes)))]

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps({"seed": self.args.seed, "texts": self.texts, "queries": self.queries}))


def add_body(text: str, user: str) -> bytes:
    return orjson.dumps({"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False})


def search_body(query: str, user: str, mode: str, top_k: int) -> bytes:
    body: dict[str, Any] = {"query": query, "filters": {"user_id": user}, "top_k": top_k}
    if mode != "hybrid":
        body["retrieval"] = mode
    return orjson.dumps(body)


# ----------------------------------------------------------------------------------------------------
# Bulk load: the rows an add writes (memories, ADD history, entities), straight into the tables.
# ----------------------------------------------------------------------------------------------------
BULK_SQL = """
WITH input AS (
    SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
        AS t(id, user_id, memory, hash, emb, ts)
),
ins AS (
    INSERT INTO memories (id, project_id, user_id, agent_id, app_id, run_id, memory, hash, metadata, categories,
        embedding, immutable, expiration_date, role, actor_id, source, provenance, event_id, created_at, updated_at)
    SELECT i.id, $1, i.user_id, NULL, NULL, NULL, i.memory, i.hash, NULL, NULL, CAST(i.emb AS vector), false,
        NULL, 'user', NULL, 'verbatim', jsonb_build_object('event_id', NULL, 'message_index', 0), NULL, i.ts, i.ts
    FROM input i
    RETURNING id, user_id, memory, created_at
),
hist AS (
    INSERT INTO memory_history (id, project_id, memory_id, event, old_memory, new_memory, input, user_id,
        agent_id, app_id, run_id, categories, metadata, created_at, updated_at)
    SELECT gen_random_uuid(), $1, ins.id, 'ADD', NULL, ins.memory,
        jsonb_build_array(jsonb_build_object('role', 'user', 'content', ins.memory)), ins.user_id,
        NULL, NULL, NULL, NULL, NULL, ins.created_at, ins.created_at
    FROM ins
)
INSERT INTO entities (project_id, type, name)
SELECT DISTINCT $1::uuid, 'user', user_id FROM input
ON CONFLICT DO NOTHING
"""


async def bulk_load(
    conn: asyncpg.Connection,
    project_id: uuid.UUID,
    target: int,
    pool_texts: list[str],
    pool_vectors: list[str],
    pool_hashes: list[str],
    state: dict[str, Any],
    per_user: int,
    batch: int,
) -> dict[str, Any]:
    current = int(await conn.fetchval("SELECT count(*) FROM memories WHERE project_id = $1", project_id))
    need = target - current
    info: dict[str, Any] = {"rows_before": current, "rows_added": max(need, 0)}
    if need <= 0:
        return info
    rng: random.Random = state["id_rng"]
    t0 = time.perf_counter()
    done = 0
    while done < need:
        b = min(batch, need - done)
        ids, users, texts, hashes, vecs, ts = [], [], [], [], [], []
        for _ in range(b):
            j = state["bulk_rows"]
            k = j % len(pool_texts)
            ids.append(uuid.UUID(int=rng.getrandbits(128), version=4))
            users.append(f"bulk-u{j // per_user:05d}")
            texts.append(pool_texts[k])
            hashes.append(pool_hashes[k])
            vecs.append(pool_vectors[k])
            ts.append(state["t0"] + timedelta(milliseconds=j))  # a user's memories: one conversation
            state["bulk_rows"] += 1
        await conn.execute(BULK_SQL, project_id, ids, users, texts, hashes, vecs, ts)
        done += b
        if done % (batch * 10) == 0 or done == need:
            log(f"  bulk {current + done}/{target} rows ({done / (time.perf_counter() - t0):.0f} rows/s)")
    info["load_s"] = round(time.perf_counter() - t0, 1)
    info["rows_per_s"] = round(need / max(info["load_s"], 1e-9), 1)
    return info


# ----------------------------------------------------------------------------------------------------
# The official Python SDK (mem0ai 2.2.1), in its own venv and process
# ----------------------------------------------------------------------------------------------------
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
        from tests.sdk.envs import python_sdk

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


# ----------------------------------------------------------------------------------------------------
# The Mem0 peer
# ----------------------------------------------------------------------------------------------------
def peer_python(args: argparse.Namespace) -> str | None:
    if args.no_peer:
        return None
    if args.peer_python:
        return str(args.peer_python)
    log("building / checking the Mem0 peer venv (bash bench/mem0_peer_env.sh) ...")
    proc = subprocess.run(["bash", str(PEER_ENV_SCRIPT)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"bench/mem0_peer_env.sh failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


def run_peer(py: str, args: argparse.Namespace, db_url: str, texts_file: Path, out: Path, mode: str) -> dict[str, Any]:
    cmd = [
        py, str(PEER_SCRIPT), "--database-url", db_url, "--texts-file", str(texts_file), "--out", str(out),
        "--n", str(args.n), "--concurrency", ",".join(map(str, args.levels)),
        "--ingest-users", str(args.ingest_users), "--sizes", ",".join(map(str, args.sizes)),
        "--per-user", str(args.per_user), "--queries", str(args.queries),
        "--search-concurrency", ",".join(map(str, args.search_levels)), "--warmup", str(args.warmup),
        "--pool", str(args.pool), "--seed", str(args.seed), "--top-k", str(args.top_k),
        "--recall-checks", str(args.recall_checks), "--checkpoint",
    ]  # fmt: skip
    if PEER_MODES[mode]:
        cmd += ["--pg-options", PEER_MODES[mode]]
    log(f"Mem0 peer ({mode}) ...")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=7200)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"mem0 peer ({mode}) failed with exit code {proc.returncode}")
    result = json.loads(out.read_text())
    result["table"] = proc.stdout
    log(f"Mem0 peer ({mode}) done in {time.perf_counter() - t0:.0f}s")
    return result


# ----------------------------------------------------------------------------------------------------
# memserver phases
# ----------------------------------------------------------------------------------------------------
async def measured(
    stack: Stack,
    pgss: StatementStats,
    cpu: CpuMeter,
    profiler: Profiler,
    profile_name: str | None,
    path: str,
    bodies: list[bytes],
    concurrency: int,
    key: str,
) -> tuple[list[float], list[tuple[int, bytes]], float, dict[str, Any]]:
    if profile_name:
        profiler.start(profile_name)
    await pgss.reset()
    c0 = cpu.snapshot()
    lat, out, wall = await http_run(stack.server.url, key, path, bodies, concurrency)
    c1 = cpu.snapshot()
    db = await pgss.collect(len(bodies))
    extra = {"db": db, "cpu": CpuMeter.delta(c0, c1, len(bodies))}
    if profile_name and (prof := profiler.stop()):
        extra["profile"] = prof
    return lat, out, wall, extra


async def memserver_phases(stack: Stack, args: argparse.Namespace, wl: Workload) -> dict[str, Any]:
    from memserver.pipeline.messages import text_hash
    from memserver.providers.embedder.local import LocalEmbedder
    from memserver.storage.repositories.memories import vector_literal

    project_id, key = await stack.tenant("main")
    sdk_project, sdk_key = await stack.tenant("sdk")
    stack.start_server()
    server_pid = stack.server.proc.pid
    await asyncio.sleep(1.0)
    result: dict[str, Any] = {
        "server_pid": server_pid,
        "idle_rss_mb_after_startup": round((proc_status_kb(server_pid, "VmRSS") or 0) / 1024, 1),
        "embedder_cache": "default (4096)" if args.embedder_cache else "disabled (MEMSERVER_EMBEDDER__CACHE_SIZE=0)",
        "ingest": [],
        "sdk_ingest": [],
        "search": {},
    }
    admin = await asyncpg.connect(plain_url(stack.pg.url("postgres")))
    conn = await asyncpg.connect(plain_url(stack.url))
    pgss = StatementStats(admin, "memserver")
    cpu = CpuMeter(server_pid, stack.postmaster_pid())
    profiler = Profiler(args.profile, server_pid, gil=args.profile_gil)
    try:
        # Warm-up, as the peer does: 5 adds (user "warmup") and one search; not measured.
        warm = [add_body(f"Warm-up fact number {i}.", "warmup") for i in range(5)]
        await http_run(stack.server.url, key, "/v3/memories/add/", warm, 1)
        await http_run(
            stack.server.url, key, "/v3/memories/search/", [search_body("warm-up", "warmup", "hybrid", 10)], 1
        )

        # 1. ingest, raw HTTP
        await admin.execute("CHECKPOINT")
        for k, c in enumerate(wl.levels):
            jobs = wl.ingest_jobs(k, c)
            log(f"memserver ingest: {len(jobs)} adds at concurrency {c} ...")
            name = f"ingest-c{c}" if c == max(wl.levels) else None
            lat, out, wall, extra = await measured(
                stack, pgss, cpu, profiler, name, "/v3/memories/add/", [add_body(t, u) for t, u in jobs], c, key
            )
            bad = 0
            errors: list[str] = []
            for (status, body), (text, _) in zip(out, jobs, strict=True):
                if status != 200:
                    errors.append(f"{status}: {body[:200].decode(errors='replace')}")
                    continue
                res = orjson.loads(body)
                items = res.get("results") or []
                if (
                    res.get("status") != "SUCCEEDED"
                    or [i.get("event") for i in items] != ["ADD"]
                    or items[0].get("memory") != text
                ):
                    bad += 1
            stored = int(
                await conn.fetchval(
                    "SELECT count(*) FROM memories WHERE project_id = $1 AND user_id LIKE $2",
                    project_id,
                    f"ingest-c{c}-u%",
                )
            )
            r = {
                "concurrency": c,
                "adds": len(jobs),
                "wall_s": round(wall, 3),
                "adds_per_s": round(len(jobs) / wall, 2),
                **latency_summary(lat),
                "errors": len(errors),
                "error_samples": errors[:3],
                "bad_results": bad,
                "rows_stored": stored,
                "all_stored": stored == len(jobs) and not errors and bad == 0,
                **extra,
            }
            log(
                f"  {r['adds_per_s']} adds/s, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
                f"{r['db']['statements_per_op']} statements/add, server CPU {r['cpu']['server_cpu_ms_per_op']} ms/add"
            )
            result["ingest"].append(r)

        # 1b. the same adds through the official Python SDK, into a second project (removed afterwards)
        if not args.no_sdk and (py := sdk_python()):
            log("memserver ingest through the Python SDK (mem0ai 2.2.1 MemoryClient, threads) ...")
            levels = [(c, wl.ingest_jobs(k, c, prefix="sdk")) for k, c in enumerate(wl.levels)]
            try:
                result["sdk_ingest"] = run_sdk_ingest(py, stack.workdir, stack.server.url, sdk_key, levels)
                for r in result["sdk_ingest"]:
                    c, rate = r["concurrency"], r["adds_per_s"]
                    log(f"  SDK c{c}: {rate} adds/s, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")
            except Exception as exc:
                log(f"  SDK ingest failed: {exc}")
                result["sdk_ingest_error"] = str(exc)[-2000:]
            for table in ("memories", "memory_history", "events", "entities"):
                await conn.execute(f"DELETE FROM {table} WHERE project_id = $1", sdk_project)

        # 2. search at each size
        if args.sizes and args.queries > 0:
            pool_texts = wl.pool_texts()
            log(f"embedding a pool of {len(pool_texts)} texts with memserver's local embedder ...")
            t0 = time.perf_counter()
            embedder = LocalEmbedder(cache_dir=MODEL_CACHE)
            vectors = embedder.embed_sync(pool_texts)
            pool_vectors = [vector_literal(v) for v in vectors]
            pool_hashes = [text_hash(t) for t in pool_texts]
            del embedder, vectors
            result["pool_embed_s"] = round(time.perf_counter() - t0, 1)
            log(f"  {result['pool_embed_s']} s")
            state = {
                "bulk_rows": 0,
                "id_rng": random.Random(args.seed + 7),
                "t0": datetime.now(UTC) - timedelta(days=30),
            }
            qrng = random.Random(args.seed + 11)  # the peer's search-pair generator
            for size in args.sizes:
                log(f"loading the memserver project to {size} memories ...")
                load = await bulk_load(
                    conn, project_id, size, pool_texts, pool_vectors, pool_hashes, state, args.per_user, args.bulk_batch
                )
                t0 = time.perf_counter()
                await conn.execute("ANALYZE memories")
                await conn.execute("ANALYZE memory_history")
                await conn.execute("ANALYZE entities")
                await admin.execute("CHECKPOINT")
                load["analyze_s"] = round(time.perf_counter() - t0, 1)
                total = int(await conn.fetchval("SELECT count(*) FROM memories WHERE project_id = $1", project_id))
                full_users = state["bulk_rows"] // args.per_user
                if full_users == 0:
                    candidates = [f"ingest-c{wl.levels[0]}-u{i:04d}" for i in range(args.ingest_users)]
                else:
                    candidates = [f"bulk-u{i:05d}" for i in range(full_users)]
                pairs = [(wl.queries[i % len(wl.queries)], qrng.choice(candidates)) for i in range(args.queries)]
                block: dict[str, Any] = {
                    "rows": total,
                    "rows_in_table": int(await conn.fetchval("SELECT count(*) FROM memories")),
                    "users_in_project": int(
                        await conn.fetchval(
                            "SELECT count(DISTINCT user_id) FROM memories WHERE project_id = $1", project_id
                        )
                    ),
                    "load": load,
                    "search_pairs": [{"query": q, "user_id": u} for q, u in pairs],
                    "runs": [],
                }
                for mode in SEARCH_MODES:
                    bodies = [search_body(q, u, mode, args.top_k) for q, u in pairs]
                    for c in args.search_levels:
                        await http_run(stack.server.url, key, "/v3/memories/search/", bodies[: args.warmup], c)
                        log(f"search @{total} {mode}: {len(bodies)} searches at concurrency {c} ...")
                        name = (
                            f"search-{size}-{mode}-c{c}"
                            if size == max(args.sizes) and c == max(args.search_levels)
                            else None
                        )
                        lat, out, wall, extra = await measured(
                            stack, pgss, cpu, profiler, name, "/v3/memories/search/", bodies, c, key
                        )
                        hits, errors = [], []
                        for (status, body), (_, user) in zip(out, pairs, strict=True):
                            if status != 200:
                                errors.append(f"{status}: {body[:200].decode(errors='replace')}")
                                hits.append(0)
                                continue
                            res = orjson.loads(body)["results"]
                            hits.append(len(res))
                            if any(h.get("user_id") != user for h in res):
                                errors.append("result of another user returned")
                        r = {
                            "mode": mode,
                            "concurrency": c,
                            "searches": len(bodies),
                            "top_k": args.top_k,
                            "wall_s": round(wall, 3),
                            "searches_per_s": round(len(bodies) / wall, 2),
                            **latency_summary(lat),
                            "mean_hits": round(sum(hits) / len(hits), 2),
                            "searches_with_fewer_than_top_k_hits": sum(1 for h in hits if h < args.top_k),
                            "searches_with_zero_hits": sum(1 for h in hits if h == 0),
                            "errors": len(errors),
                            "error_samples": errors[:3],
                            **extra,
                        }
                        log(
                            f"  p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, {r['searches_per_s']}/s, "
                            f"{r['db']['statements_per_op']} statements/search, DB {r['db']['db_ms_per_op']} ms"
                        )
                        block["runs"].append(r)
                result["search"][str(size)] = block
    finally:
        result["peak_rss_mb"] = round((proc_status_kb(server_pid, "VmHWM") or 0) / 1024, 1)
        result["rss_mb_at_end"] = round((proc_status_kb(server_pid, "VmRSS") or 0) / 1024, 1)
        await conn.close()
        await admin.close()
    return result


# ----------------------------------------------------------------------------------------------------
# One complete run
# ----------------------------------------------------------------------------------------------------
def run_once(args: argparse.Namespace, rep: int, peer_py: str | None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="memserver-speed-", dir="/tmp"))
    os.chmod(workdir, 0o755)  # the embedded Postgres runs as an unprivileged OS user
    run: dict[str, Any] = {"repeat": rep, "loadavg_at_start": loadavg(), "started": datetime.now(UTC).isoformat()}
    t_all = time.perf_counter()
    stack = Stack(workdir, args)
    wl = Workload(args)
    texts_file = workdir / "workload.json"
    wl.dump(texts_file)
    try:
        stack.start_postgres()
        asyncio.run(stack.setup_databases())
        stack.migrate()
        t0 = time.perf_counter()
        run["memserver"] = asyncio.run(memserver_phases(stack, args, wl))
        run["memserver"]["phase_s"] = round(time.perf_counter() - t0, 1)
        run["loadavg_after_memserver"] = loadavg()
        stack.stop_server()
        # Free memserver's data before the peer runs, so both systems meet the same cache state.
        asyncio.run(_drop_db(stack, "memserver"))
        run["mem0"] = {}
        if peer_py:
            for mode in args.peer_modes:
                out = workdir / f"mem0-{mode}.json"
                asyncio.run(checkpoint(stack))
                res = run_peer(peer_py, args, stack.mem0_url(), texts_file, out, mode)
                same = all(
                    res["search"].get(size, {}).get("search_pairs") == block["search_pairs"]
                    for size, block in run["memserver"]["search"].items()
                )
                res["workload_identical_to_memserver"] = same
                if not same:
                    log(f"WARNING: the Mem0 peer ({mode}) searched other (query, user) pairs than memserver")
                run["mem0"][mode] = res
        run["loadavg_at_end"] = loadavg()
    finally:
        stack.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    run["total_s"] = round(time.perf_counter() - t_all, 1)
    run["summary"] = summarize(run, args)
    return run


async def checkpoint(stack: Stack) -> None:
    """Flush dirty pages now, so a checkpoint does not land in the middle of a measured phase."""
    admin = await asyncpg.connect(plain_url(stack.pg.url("postgres")))
    try:
        await admin.execute("CHECKPOINT")
    finally:
        await admin.close()


async def _drop_db(stack: Stack, name: str) -> None:
    admin = await asyncpg.connect(plain_url(stack.pg.url("postgres")))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        await admin.close()


# ----------------------------------------------------------------------------------------------------
# Summary (flat keys, so repeats can be reduced to medians), ratios, table
# ----------------------------------------------------------------------------------------------------
def summarize(run: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    s: dict[str, float] = {}
    ms = run["memserver"]
    for r in ms["ingest"]:
        p = f"memserver/ingest/c{r['concurrency']}/"
        s |= {p + k: r[k] for k in ("adds_per_s", "p50_ms", "p95_ms", "p99_ms")}
        s[p + "statements_per_op"] = r["db"]["statements_per_op"]
        s[p + "db_ms_per_op"] = r["db"]["db_ms_per_op"]
        s |= {p + k: v for k, v in r["cpu"].items()}
    for r in ms.get("sdk_ingest", []):
        p = f"memserver-sdk/ingest/c{r['concurrency']}/"
        s |= {p + k: r[k] for k in ("adds_per_s", "p50_ms", "p95_ms", "p99_ms")}
    for size, block in ms["search"].items():
        for r in block["runs"]:
            p = f"memserver/search/{size}/{r['mode']}/c{r['concurrency']}/"
            s |= {p + k: r[k] for k in ("p50_ms", "p95_ms", "p99_ms", "searches_per_s", "mean_hits")}
            s[p + "statements_per_op"] = r["db"]["statements_per_op"]
            s[p + "db_ms_per_op"] = r["db"]["db_ms_per_op"]
            s |= {p + k: v for k, v in r["cpu"].items()}
    s["memserver/idle_rss_mb"] = ms["idle_rss_mb_after_startup"]
    s["memserver/peak_rss_mb"] = ms["peak_rss_mb"]
    for mode, res in run.get("mem0", {}).items():
        for r in res["ingest"]:
            p = f"mem0-{mode}/ingest/c{r['concurrency']}/"
            s |= {p + k: r[k] for k in ("adds_per_s", "p50_ms", "p95_ms", "p99_ms")}
            db = r.get("db") or {}
            if "server_statements_per_op_pg_stat_statements" in db:
                s[p + "statements_per_op"] = db["server_statements_per_op_pg_stat_statements"]
            if "client_round_trips_per_op" in db:
                s[p + "round_trips_per_op"] = db["client_round_trips_per_op"]
        for size, block in res["search"].items():
            for r in block["runs"]:
                p = f"mem0-{mode}/search/{size}/c{r['concurrency']}/"
                s |= {p + k: r[k] for k in ("p50_ms", "p95_ms", "p99_ms", "searches_per_s", "mean_hits")}
                db = r.get("db") or {}
                if "server_statements_per_op_pg_stat_statements" in db:
                    s[p + "statements_per_op"] = db["server_statements_per_op_pg_stat_statements"]
                if "client_round_trips_per_op" in db:
                    s[p + "round_trips_per_op"] = db["client_round_trips_per_op"]
            rc = block.get("vector_stage_recall") or {}
            if rc.get(f"recall_at_{args.top_k}_vs_exact") is not None:
                s[f"mem0-{mode}/search/{size}/vector_recall"] = rc[f"recall_at_{args.top_k}_vs_exact"]
        # ratios
        for c in args.levels:
            a, b = s.get(f"memserver/ingest/c{c}/adds_per_s"), s.get(f"mem0-{mode}/ingest/c{c}/adds_per_s")
            if a and b:
                s[f"ratio/ingest/c{c}/vs-mem0-{mode}"] = round(a / b, 2)
        for size in map(str, args.sizes):
            for c in args.search_levels:
                m = s.get(f"mem0-{mode}/search/{size}/c{c}/p95_ms")
                for smode in SEARCH_MODES:
                    x = s.get(f"memserver/search/{size}/{smode}/c{c}/p95_ms")
                    if m and x:
                        s[f"ratio/search-p95/{size}/{smode}/c{c}/vs-mem0-{mode}"] = round(m / x, 2)
    return s


def median_summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = dict.fromkeys(k for r in runs for k in r["summary"])
    out = {}
    for k in keys:
        vals = [r["summary"][k] for r in runs if isinstance(r["summary"].get(k), (int, float))]
        if vals:
            out[k] = round(statistics.median(vals), 3)
    return out


def targets(s: dict[str, float], args: argparse.Namespace) -> list[dict[str, Any]]:
    fair = "iterative" if "iterative" in args.peer_modes else (args.peer_modes[0] if args.peer_modes else None)
    out: list[dict[str, Any]] = []
    if fair:
        ingest_ref = "default" if "default" in args.peer_modes else fair
        c = max(args.levels)
        v = s.get(f"ratio/ingest/c{c}/vs-mem0-{ingest_ref}")
        out.append(
            {
                "target": f"ingest adds/s >= {TARGETS['ingest_ratio_c8']:g}x Mem0 (c{c})",
                "value": v,
                "met": v is not None and v >= TARGETS["ingest_ratio_c8"],
            }
        )
        for size in map(str, args.sizes):
            for smode in SEARCH_MODES:
                v = s.get(f"ratio/search-p95/{size}/{smode}/c1/vs-mem0-{fair}")
                out.append(
                    {
                        "target": f"search p95 >= {TARGETS['search_p95_ratio']:g}x faster than Mem0 ({fair}), "
                        f"{smode} @{size} c1",
                        "value": v,
                        "met": v is not None and v >= TARGETS["search_p95_ratio"],
                    }
                )
    big = str(max(args.sizes)) if args.sizes else None
    if big:
        v = s.get(f"memserver/search/{big}/hybrid/c1/p95_ms")
        out.append(
            {
                "target": f"hybrid search p95 @{big} c1 < {TARGETS['hybrid_p95_100k_ms']:g} ms",
                "value": v,
                "met": v is not None and v < TARGETS["hybrid_p95_100k_ms"],
            }
        )
    return out


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)


def print_table(s: dict[str, float], args: argparse.Namespace, header: str) -> None:
    def row(cells: list[Any]) -> None:
        print("| " + " | ".join(fmt(c) for c in cells) + " |")

    print()
    print(header)
    print()
    row(
        [
            "ingest (infer=false)",
            "conc",
            "adds/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "stmts/add",
            "DB ms/add",
            "API CPU ms/add",
            "PG CPU ms/add",
        ]
    )
    row(["---"] * 10)
    systems = [("memserver (raw HTTP)", "memserver"), ("memserver (Python SDK)", "memserver-sdk")]
    systems += [(f"Mem0 OSS ({m})", f"mem0-{m}") for m in args.peer_modes]
    for label, key in systems:
        for c in args.levels:
            p = f"{key}/ingest/c{c}/"
            if p + "adds_per_s" not in s:
                continue
            row(
                [
                    label,
                    c,
                    s.get(p + "adds_per_s"),
                    s.get(p + "p50_ms"),
                    s.get(p + "p95_ms"),
                    s.get(p + "p99_ms"),
                    s.get(p + "statements_per_op"),
                    s.get(p + "db_ms_per_op"),
                    s.get(p + "server_cpu_ms_per_op"),
                    s.get(p + "postgres_cpu_ms_per_op"),
                ]
            )
    print()
    row(
        [
            "search top_k=10",
            "memories",
            "conc",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "searches/s",
            "mean hits",
            "stmts/search",
            "DB ms/search",
        ]
    )
    row(["---"] * 10)
    for size in map(str, args.sizes):
        for c in args.search_levels:
            sources = [(f"memserver {m}", f"memserver/search/{size}/{m}/c{c}/") for m in SEARCH_MODES]
            sources += [(f"Mem0 OSS ({m})", f"mem0-{m}/search/{size}/c{c}/") for m in args.peer_modes]
            for label, p in sources:
                if p + "p95_ms" in s:
                    row(
                        [
                            label,
                            size,
                            c,
                            s[p + "p50_ms"],
                            s[p + "p95_ms"],
                            s[p + "p99_ms"],
                            s[p + "searches_per_s"],
                            s[p + "mean_hits"],
                            s.get(p + "statements_per_op"),
                            s.get(p + "db_ms_per_op", "-"),
                        ]
                    )
    ratios = {k: v for k, v in s.items() if k.startswith("ratio/")}
    if ratios:
        print()
        print("ratios (ingest: memserver adds/s / Mem0 adds/s; search: Mem0 p95 / memserver p95):")
        for k, v in ratios.items():
            print(f"  {k.removeprefix('ratio/')}: {v}x")
    print()
    print(
        f"memserver API process RSS: idle after startup {fmt(s.get('memserver/idle_rss_mb'))} MB, "
        f"peak {fmt(s.get('memserver/peak_rss_mb'))} MB"
    )
    for m in args.peer_modes:
        for size in map(str, args.sizes):
            if (v := s.get(f"mem0-{m}/search/{size}/vector_recall")) is not None:
                print(f"Mem0 ({m}) vector-stage recall@{args.top_k} vs exact @{size}: {v}")
    print()
    for t in targets(s, args):
        print(f"  [{'PASS' if t['met'] else 'FAIL'}] {t['target']}: {fmt(t['value'])}")


# ----------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--quick", action="store_true", help="smoke size (CI): --n 100 --sizes 1000,3000 --queries 40 --pool 500"
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "speed.json")
    p.add_argument("--repeat", type=int, default=1, help="complete runs; the table shows medians")
    p.add_argument("--n", type=int, help=f"adds per ingest concurrency level (default {FULL['n']})")
    p.add_argument("--concurrency", default="1,8", help="ingest concurrency levels (default 1,8)")
    p.add_argument("--ingest-users", type=int, default=50)
    p.add_argument("--sizes", help=f"memories in the project for the search phase (default {FULL['sizes']})")
    p.add_argument("--per-user", type=int, default=100, help="memories per user in the bulk load")
    p.add_argument("--queries", type=int, help=f"searches per size, mode and concurrency (default {FULL['queries']})")
    p.add_argument("--search-concurrency", default="1,8", help="search concurrency levels (default 1,8)")
    p.add_argument("--warmup", type=int, help=f"unmeasured searches before each run (default {FULL['warmup']})")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--pool", type=int, help=f"distinct texts embedded for the bulk load (default {FULL['pool']})")
    p.add_argument("--bulk-batch", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--texts-file", type=Path, help="replay these texts/queries (mem0_peer.py --dump-texts format)")
    p.add_argument("--no-peer", action="store_true", help="memserver only")
    p.add_argument("--peer-modes", help="Mem0 runs: default (out of the box), iterative (default: both)")
    p.add_argument("--peer-python", type=Path, help="python of the peer venv (default: bench/mem0_peer_env.sh)")
    p.add_argument("--recall-checks", type=int, help="Mem0 searches checked against an exact scan (default 20)")
    p.add_argument("--no-sdk", action="store_true", help="skip the ingest through the official Python SDK")
    p.add_argument("--embedder-cache", action="store_true", help="keep memserver's embedding cache (default off)")
    p.add_argument("--profile", type=Path, help="py-spy the API process during the c8 ingest and largest search")
    p.add_argument("--profile-gil", action="store_true", help="with --profile: only threads holding the GIL")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (Postgres data, logs)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    args.search_levels = [int(x) for x in args.search_concurrency.split(",") if x.strip()]
    args.sizes = [int(x) for x in str(args.sizes).split(",") if x.strip()]
    modes = args.peer_modes or "default,iterative"
    args.peer_modes = [] if args.no_peer else [m for m in modes.split(",") if m.strip()]
    for m in args.peer_modes:
        if m not in PEER_MODES:
            p.error(f"--peer-modes: unknown mode {m!r} (default, iterative)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC).isoformat()
    la0 = loadavg()
    peer_py = peer_python(args)
    runs = []
    for rep in range(args.repeat):
        log(f"run {rep + 1}/{args.repeat}")
        runs.append(run_once(args, rep, peer_py))
    summary = runs[0]["summary"] if len(runs) == 1 else median_summary(runs)
    result = {
        "benchmark": "speed (benchmarks.md §2)",
        "started": started,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": la0,
            "loadavg_at_end": loadavg(),
        },
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "summary_is_median_of": len(runs),
        "targets": targets(summary, args),
        "fair_search_comparison": "mem0-iterative: out of the box (hnsw.iterative_scan=off) Mem0's user-filtered "
        "HNSW search returns few or no results at these sizes, so its latency is that of a search that finds "
        "almost nothing; with iterative_scan=relaxed_order it returns the user's nearest memories.",
        "runs": runs,
    }
    header = (
        f"memserver vs Mem0 OSS 2.2.1: one Postgres 18 + pgvector, all-MiniLM-L6-v2, infer=false "
        f"(n={args.n}, sizes={args.sizes}, queries={args.queries}"
        + (f", medians of {len(runs)} runs" if len(runs) > 1 else "")
        + f"; loadavg {la0} -> {result['machine']['loadavg_at_end']})"
    )
    print_table(summary, args, header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
