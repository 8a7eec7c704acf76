"""The commands that run something: serve, migrate, worker, mcp."""

from __future__ import annotations

import argparse
import os
import signal
import time
from typing import Any

import uvicorn

from memserver.cli.runtime import database, log, migrate_schema, out, run_db
from memserver.config import Settings, client_api_key
from memserver.services import admin


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    # Deferred: the app (FastAPI, every route, the MCP SDK) takes ~1.5 s to import; other commands never need it.
    from memserver.main import create_app

    started = time.monotonic()
    # uvicorn handles SIGTERM, then re-raises it once it has shut down; the default handler would
    # kill the process on the spot and leave the embedded Postgres running. As an exception it
    # unwinds through `database()`, which stops it.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if args.host:
        settings = settings.model_copy(update={"host": args.host})
    if args.port:
        settings = settings.model_copy(update={"port": args.port})
    with database(settings) as settings:
        migrate_schema(settings)
        if settings.bootstrap:
            key = run_db(settings, admin.bootstrap)
            if key:
                _print_first_key(key, settings)
        log.info("ready to serve after %.1fs", time.monotonic() - started)
        app: Any
        if settings.workers > 1:
            # Worker processes build their own app from the environment; hand them the database
            # this process resolved (possibly the embedded one it just started).
            os.environ["MEMSERVER_DATABASE_URL"] = settings.async_database_url() or ""
            app = "memserver.main:create_app_from_env"
        else:
            app = create_app(settings)
        uvicorn.run(
            app,
            factory=settings.workers > 1,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # uvicorn's records go through memserver's handler (text or JSON, request id)
            access_log=args.access_log,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=10,
        )


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _print_first_key(key: str, settings: Settings) -> None:
    host = f"http://{settings.host}:{settings.port}"
    out("")
    out("memserver: new database - created org 'default', project 'default' and this API key.")
    out("It is shown only this once; store it now (more keys: `memserver keys create`).")
    out("")
    out(f"    {key}")
    out("")
    out(f'    from mem0 import MemoryClient; client = MemoryClient(api_key="{key}", host="{host}")')
    out("")


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    with database(settings) as settings:
        migrate_schema(settings)
    out("migrations applied")


def queues_arg(value: str) -> list[str]:
    names = [q.strip() for q in value.split(",") if q.strip()]
    if not names or any(q not in ("jobs", "webhooks") for q in names):
        raise argparse.ArgumentTypeError("a comma-separated list of: jobs, webhooks")
    return names


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    # Deferred: the worker needs celery, an optional package (the `celery` extra).
    from memserver.worker.process import run_worker

    with database(settings) as settings:
        migrate_schema(settings)
        run_worker(settings, args.concurrency, tuple(args.queues))


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> None:
    """MCP over stdio for clients that launch a command; every tool call goes to a memserver over HTTP."""
    # Deferred: the MCP SDK takes ~1 s to import; only this command needs it.
    from memserver.mcp import stdio

    defaults = {k: v for k in ("user_id", "agent_id", "app_id", "run_id") if (v := (getattr(args, k) or "").strip())}
    stdio.run(args.url or settings.mcp.url, client_api_key(), defaults, timeout_s=settings.mcp.timeout_s)
