"""`memserver` command line: serve, migrate, and manage orgs, projects and keys."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from memserver import logs
from memserver.cli.admin import (
    cmd_backfill_event_dates,
    cmd_export,
    cmd_import,
    cmd_keys,
    cmd_members,
    cmd_orgs,
    cmd_projects,
)
from memserver.cli.serve import cmd_mcp, cmd_migrate, cmd_serve, cmd_worker, queues_arg
from memserver.config import get_settings


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
        type=queues_arg,
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
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise SystemExit(f"memserver: invalid configuration\n{_config_errors(exc)}") from None
    logs.configure(settings.log_level, settings.log_format)
    return args.func(args, settings)


def _config_errors(exc: ValidationError) -> str:
    """Each settings error on one line, named by its variable (MEMSERVER_RERANK__URL) where it has one."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        name = "MEMSERVER_" + "__".join(str(p).upper() for p in err["loc"]) if err["loc"] else "MEMSERVER_*"
        lines.append(f"  {name}: {str(err['msg']).removeprefix('Value error, ')}")
    return "\n".join(lines)
