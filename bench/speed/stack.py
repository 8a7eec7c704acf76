"""The private Postgres (two databases) and a running `memserver serve`."""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid

import asyncpg

from bench.speed.config import MEM0_DB, log
from harness.postgres import PostgresRun, plain_url
from harness.server import LiveServer, start_server, stop_server
from harness.tenants import new_tenant


class Stack:
    """The private Postgres (two databases) in a run directory, and a running `memserver serve`."""

    def __init__(self, args: argparse.Namespace):
        conf = ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track_planning = on"]
        # default durability (fsync on), unlike the tests' throwaway cluster
        self.run = PostgresRun("memserver-speed-", extra_conf=conf, keep=args.keep)
        self.workdir = self.run.workdir
        self.pg = self.run.pg
        self.args = args
        self.server: LiveServer | None = None
        self.url = ""

    def start_postgres(self) -> None:
        t0 = time.perf_counter()
        self.run.__enter__()
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
        self.run.migrate()

    async def tenant(self, name: str) -> tuple[uuid.UUID, str]:
        return await new_tenant(self.url, "speed-bench", f"{name}-{time.time_ns()}")

    def start_server(self) -> None:
        extra = {}
        if not self.args.embedder_cache:
            extra["MEMSERVER_EMBEDDER__CACHE_SIZE"] = "0"
        t0 = time.perf_counter()
        self.server = start_server(self.url, self.workdir / "memserver.log", **extra)
        log(f"memserver serve up at {self.server.url} (pid {self.server.proc.pid}, {time.perf_counter() - t0:.1f}s)")

    def stop_server(self) -> None:
        if self.server is not None:
            stop_server(self.server)
            self.server = None

    def mem0_url(self) -> str:
        return plain_url(self.pg.url(MEM0_DB))

    def stop(self) -> None:
        """Stop the server and Postgres; the run directory goes too unless --keep."""
        try:
            self.stop_server()
        finally:
            self.run.close()
        if self.args.keep:
            log(f"kept {self.workdir}")


async def checkpoint(stack: Stack) -> None:
    """Flush dirty pages now, so a checkpoint does not land in the middle of a measured phase."""
    admin = await asyncpg.connect(plain_url(stack.pg.url("postgres")))
    try:
        await admin.execute("CHECKPOINT")
    finally:
        await admin.close()


async def drop_db(stack: Stack, name: str) -> None:
    admin = await asyncpg.connect(plain_url(stack.pg.url("postgres")))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        await admin.close()
