"""`memserver` command line: serve, migrate, and manage orgs, projects and keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn
from pydantic import SecretStr

from memserver import logs
from memserver.config import Settings, client_api_key, get_settings
from memserver.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError
from memserver.errors import MemserverError
from memserver.services import admin, event_dates
from memserver.storage import migrate
from memserver.storage.db import Database

T = TypeVar("T")
log = logging.getLogger("memserver")


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextmanager
def database(settings: Settings, *, fast: bool = False) -> Iterator[Settings]:
    """Settings with a database URL: the configured one, or the embedded Postgres (started if needed)."""
    if settings.database_url is not None:
        yield settings
        return
    try:
        pg = EmbeddedPostgres(
            settings.embedded.data_dir,
            port=settings.embedded.port,
            os_user=settings.embedded.os_user,
            fast=fast,
        )
        pg.start()
    except EmbeddedPostgresError as exc:
        raise SystemExit(f"memserver: {exc}") from None
    try:
        yield settings.model_copy(update={"database_url": SecretStr(pg.url())})
    finally:
        pg.stop()


def _run(settings: Settings, fn: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        url = settings.async_database_url()
        assert url is not None
        db = Database(url, settings.db, application_name="memserver-cli")
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _migrate(settings: Settings) -> None:
    """Apply migrations, then refuse an embedder whose dimension does not fit the stored vectors."""
    url = settings.async_database_url()
    assert url is not None
    migrate.upgrade(url, settings.embedder.dim)

    async def check(db: Database) -> None:
        async with db.connect() as conn:
            await migrate.check_embedding_dim(conn, settings.embedder.dim)

    try:
        _run(settings, check)
    except migrate.SchemaMismatchError as exc:
        raise SystemExit(f"memserver: {exc}") from None


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
        _migrate(settings)
        if settings.bootstrap:
            key = _run(settings, admin.bootstrap)
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
    _out("")
    _out("memserver: new database - created org 'default', project 'default' and this API key.")
    _out("It is shown only this once; store it now (more keys: `memserver keys create`).")
    _out("")
    _out(f"    {key}")
    _out("")
    _out(f'    from mem0 import MemoryClient; client = MemoryClient(api_key="{key}", host="{host}")')
    _out("")


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    with database(settings) as settings:
        _migrate(settings)
    _out("migrations applied")


def cmd_keys(args: argparse.Namespace, settings: Settings) -> None:

    with database(settings) as settings:
        _migrate(settings)
        if args.action == "create":
            try:
                key_id, key = _run(
                    settings,
                    lambda db: admin.create_key(
                        db,
                        args.org,
                        args.project,
                        args.name,
                        args.email,
                        scope=args.scope,
                        role=args.role,
                        defaults={"user_id": args.default_user_id, "agent_id": args.default_agent_id},
                        binding={"user_id": args.bind_user_id, "agent_id": args.bind_agent_id},
                    ),
                )
            except MemserverError as exc:
                raise SystemExit(f"memserver: {exc.message}") from None
            reach = (
                f"org {args.org} (default project {args.project})"
                if args.scope == "org"
                else (f"{args.org}/{args.project}")
            )
            bound = [f"{k}={v}" for k, v in (("user_id", args.bind_user_id), ("agent_id", args.bind_agent_id)) if v]
            if bound:
                reach += f", bound to {' '.join(bound)}"
            may = f"a {args.role} key" if args.role else "with its member's role"
            _out(f"key id {key_id} of {args.email} for {reach}, {may} (shown only once):")
            _out(key)
        elif args.action == "list":
            for k in _run(settings, admin.list_keys):
                status = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
                last = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
                _out(
                    f"{k.id}  {k.key_prefix}…  {k.org_name}/{k.project_name}  scope={k.scope}{_bound(k)}  "
                    f"role={k.role or 'member'}  {k.owner_email}  {k.name}  {status}  last used {last}"
                )
        elif args.action == "revoke":
            try:
                k = _run(settings, lambda db: admin.revoke_key(db, args.key))
            except MemserverError as exc:
                raise SystemExit(f"memserver: {exc.message}") from None
            _out(f"revoked key {k.id} ({k.key_prefix}…, {k.org_name}/{k.project_name})")


def _bound(k: Any) -> str:
    return "".join(f"  bound {c}={v}" for c in ("user_id", "agent_id") if (v := getattr(k, f"bound_{c}", None)))


def cmd_orgs(args: argparse.Namespace, settings: Settings) -> None:

    with database(settings) as settings:
        _migrate(settings)
        try:
            if args.action == "create":
                org_id = _run(settings, lambda db: admin.create_org(db, args.name, owner_email=args.owner))
                _out(f"org {args.name} {org_id}")
            elif args.action == "delete":
                _run(settings, lambda db: admin.delete_org_named(db, args.name))
                _out(f"deleted org {args.name} with its projects, memories and keys")
            else:
                for o in _run(settings, admin.list_orgs):
                    _out(f"{o['id']}  {o['name']}  projects={o['projects']}")
        except MemserverError as exc:
            raise SystemExit(f"memserver: {exc.message}") from None


def cmd_projects(args: argparse.Namespace, settings: Settings) -> None:

    with database(settings) as settings:
        _migrate(settings)
        try:
            if args.action == "create":
                pid = _run(settings, lambda db: admin.create_project(db, args.org, args.name))
                _out(f"project {args.org}/{args.name} {pid}")
            elif args.action == "delete":
                _run(settings, lambda db: admin.delete_project_named(db, args.org, args.name))
                _out(f"deleted project {args.org}/{args.name} with its memories and keys")
            else:
                for p in _run(settings, lambda db: admin.list_projects(db, args.org)):
                    _out(f"{p['id']}  {p['org']}/{p['name']}  active_keys={p['active_keys']}")
        except MemserverError as exc:
            raise SystemExit(f"memserver: {exc.message}") from None


def cmd_members(args: argparse.Namespace, settings: Settings) -> None:

    with database(settings) as settings:
        _migrate(settings)
        where = f"{args.org}/{args.project}" if args.project else args.org
        try:
            if args.action in ("add", "set-role"):
                _run(settings, lambda db: admin.add_member(db, args.org, args.email, args.role, args.project))
                _out(f"{args.email} is {args.role.upper()} in {where}")
            elif args.action == "remove":
                if not _run(settings, lambda db: admin.remove_member(db, args.org, args.email, args.project)):
                    raise SystemExit(f"memserver: {args.email} is not a member of {where}")
                _out(f"removed {args.email} from {where}")
            else:
                for m in _run(settings, lambda db: admin.list_members(db, args.org, args.project)):
                    _out(f"{m.email}  {m.role}")
        except MemserverError as exc:
            raise SystemExit(f"memserver: {exc.message}") from None


def cmd_export(args: argparse.Namespace, settings: Settings) -> None:
    # Deferred: transfer brings the embedder and document stack (~0.3 s); only export and import need it.
    from memserver.services import transfer

    out: Any = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115

    async def run(db: Database) -> int:
        principal = await admin.operator_principal(db, args.org, args.project)
        n = 0
        async for line in transfer.export_lines(db, principal, settings.embedder.dim):
            out.write(line)  # a local file or pipe: blocking briefly is fine in a one-shot CLI
            n += 1
        return n

    try:
        with database(settings) as settings:
            _migrate(settings)
            n = _run(settings, run)
    except MemserverError as exc:
        raise SystemExit(f"memserver: {exc.message}") from None
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    log.info("exported %s/%s: %d lines", args.org, args.project, n)


def cmd_import(args: argparse.Namespace, settings: Settings) -> None:
    # Deferred: transfer and the providers bring the embedder and document stack (~0.5 s); only import needs them.
    from memserver.providers.registry import Providers, build_embedder
    from memserver.services import transfer

    content = sys.stdin.buffer.read() if args.file == "-" else open(args.file, "rb").read()  # noqa: SIM115

    async def run(db: Database) -> dict[str, int]:
        principal = await admin.operator_principal(db, args.org, args.project)
        providers = Providers(embedder=build_embedder(settings))
        try:
            return await transfer.import_lines(db, providers, principal, content)
        finally:
            await providers.aclose()

    with database(settings) as settings:
        _migrate(settings)
        try:
            counts = _run(settings, run)
        except MemserverError as exc:
            raise SystemExit(f"memserver: {exc.message}") from None
    _out(f"imported into {args.org}/{args.project}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def cmd_backfill_event_dates(args: argparse.Namespace, settings: Settings) -> None:
    with database(settings) as settings:
        _migrate(settings)
        read, dated = _run(settings, lambda db: event_dates.backfill(db))
    _out(f"read {read} memories without event dates; {dated} name a time and now have one")


def _queues(value: str) -> list[str]:
    names = [q.strip() for q in value.split(",") if q.strip()]
    if not names or any(q not in ("jobs", "webhooks") for q in names):
        raise argparse.ArgumentTypeError("a comma-separated list of: jobs, webhooks")
    return names


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    # Deferred: the worker needs celery, an optional package (the `celery` extra).
    from memserver.worker.process import run_worker

    with database(settings) as settings:
        _migrate(settings)
        run_worker(settings, args.concurrency, tuple(args.queues))


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> None:
    """MCP over stdio for clients that launch a command; every tool call goes to a memserver over HTTP."""
    # Deferred: the MCP SDK takes ~1 s to import; only this command needs it.
    from memserver.mcp import stdio

    defaults = {k: v for k in ("user_id", "agent_id", "app_id", "run_id") if (v := (getattr(args, k) or "").strip())}
    stdio.run(args.url or settings.mcp.url, client_api_key(), defaults, timeout_s=settings.mcp.timeout_s)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memserver", description="Mem0-compatible memory server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server (embedded Postgres unless MEMSERVER_DATABASE_URL)")
    serve.add_argument("--host", help="bind address (default MEMSERVER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default MEMSERVER_PORT or 8000)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    worker = sub.add_parser("worker", help="run a Celery worker for asynchronous events (needs Redis)")
    worker.add_argument("--concurrency", type=int, default=2, help="worker processes")
    worker.add_argument(
        "--queues",
        type=_queues,
        default=["jobs", "webhooks"],
        help="what this worker runs: jobs, webhooks, or both (default jobs,webhooks; a worker of its own for "
        "webhooks keeps slow receivers away from adds)",
    )
    worker.set_defaults(func=cmd_worker)

    mcp = sub.add_parser(
        "mcp",
        help="serve the memory tools over MCP on stdin/stdout (key from MEM0_API_KEY or MEMSERVER_API_KEY)",
    )
    mcp.add_argument("--url", help="memserver to forward to (default MEMSERVER_MCP__URL or http://127.0.0.1:8000)")
    for entity in ("user", "agent", "app", "run"):
        mcp.add_argument(f"--{entity}-id", help=f"default {entity}_id when a tool call names no entity")
    mcp.set_defaults(func=cmd_mcp)

    keys = sub.add_parser("keys", help="manage API keys")
    ks = keys.add_subparsers(dest="action", required=True)
    kc = ks.add_parser("create", help="create a key (printed once)")
    kc.add_argument("--org", default="default")
    kc.add_argument("--project", default="default")
    kc.add_argument("--name", default="cli")
    kc.add_argument("--default-user-id", help="user_id for MCP tool calls made with this key that name no entity")
    kc.add_argument("--default-agent-id", help="agent_id for MCP tool calls made with this key that name no entity")
    kc.add_argument(
        "--bind-user-id",
        help="confine the key to this user's memories on every route (REST and MCP): the way to give an agent a key",
    )
    kc.add_argument("--bind-agent-id", help="confine the key to this agent's memories on every route")
    kc.add_argument(
        "--email", default="admin@memserver.local", help="the member the key belongs to (user_email of /v1/ping/)"
    )
    kc.add_argument(
        "--scope",
        choices=("project", "org"),
        default="project",
        help="project: the key reaches --project only; org: every project of --org its member has a role in",
    )
    kc.add_argument(
        "--role",
        type=str.upper,
        choices=("OWNER", "READER"),
        help="the key's own role: READER makes a read-only key whatever its member may do (the member is not "
        "changed); default: the member's role. A new member gets this role (default OWNER)",
    )
    ks.add_parser("list", help="list keys (prefixes only)")
    kr = ks.add_parser("revoke", help="revoke one key by its id, the key itself, or 8+ characters of either")
    kr.add_argument("key")
    keys.set_defaults(func=cmd_keys)

    orgs = sub.add_parser("orgs", help="manage organizations")
    os_ = orgs.add_subparsers(dest="action", required=True)
    oc = os_.add_parser("create")
    oc.add_argument("name")
    oc.add_argument("--owner", help="email of the org's first OWNER member")
    os_.add_parser("list")
    od = os_.add_parser("delete", help="delete an org with all its projects, memories and keys")
    od.add_argument("name")
    orgs.set_defaults(func=cmd_orgs)

    projects = sub.add_parser("projects", help="manage projects")
    ps = projects.add_subparsers(dest="action", required=True)
    pc = ps.add_parser("create")
    pc.add_argument("name")
    pc.add_argument("--org", default="default")
    pl = ps.add_parser("list")
    pl.add_argument("--org", default=None)
    pd = ps.add_parser("delete", help="delete a project with its memories and keys")
    pd.add_argument("name")
    pd.add_argument("--org", default="default")
    projects.set_defaults(func=cmd_projects)

    members = sub.add_parser("members", help="manage members and their roles (OWNER or READER)")
    ms = members.add_subparsers(dest="action", required=True)
    for action, text in (("add", "give an email a role"), ("set-role", "change a role")):
        ma = ms.add_parser(action, help=f"{text} in --org, or in --project of it")
        ma.add_argument("email")
        ma.add_argument("--role", type=str.upper, choices=("OWNER", "READER"), required=True)
        ma.add_argument("--org", default="default")
        ma.add_argument("--project", default=None)
    mr = ms.add_parser("remove", help="remove an email from --org (its keys stop working) or from --project")
    mr.add_argument("email")
    mr.add_argument("--org", default="default")
    mr.add_argument("--project", default=None)
    ml = ms.add_parser("list", help="members of --org, or of --project with their roles")
    ml.add_argument("--org", default="default")
    ml.add_argument("--project", default=None)
    members.set_defaults(func=cmd_members)

    export = sub.add_parser("export", help="write a project as JSONL (memories with embeddings, history, events)")
    export.add_argument("--org", default="default")
    export.add_argument("--project", default="default")
    export.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    export.set_defaults(func=cmd_export)

    sub.add_parser(
        "backfill-event-dates", help="give memories stored before event dates the period their text names"
    ).set_defaults(func=cmd_backfill_event_dates)
    imp = sub.add_parser("import", help="load a JSONL export, or a Mem0 Platform get_all dump, into an empty project")
    imp.add_argument("file", help="the JSONL export or JSON dump ('-' = stdin)")
    imp.add_argument("--org", default="default")
    imp.add_argument("--project", default="default")
    imp.set_defaults(func=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> Any:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    return args.func(args, settings)


if __name__ == "__main__":
    main()
