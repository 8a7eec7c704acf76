"""The operator's commands: orgs, projects, members, keys, export and import."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from memserver.cli.runtime import database, log, migrate_schema, out, run_db
from memserver.config import Settings
from memserver.errors import MemserverError
from memserver.services import admin, event_dates
from memserver.storage.db import Database


def cmd_keys(args: argparse.Namespace, settings: Settings) -> None:

    with database(settings) as settings:
        migrate_schema(settings)
        if args.action == "create":
            try:
                key_id, key = run_db(
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
            out(f"key id {key_id} of {args.email} for {reach}, {may} (shown only once):")
            out(key)
        elif args.action == "list":
            for k in run_db(settings, admin.list_keys):
                status = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
                last = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
                out(
                    f"{k.id}  {k.key_prefix}…  {k.org_name}/{k.project_name}  scope={k.scope}{_bound(k)}  "
                    f"role={k.role or 'member'}  {k.owner_email}  {k.name}  {status}  last used {last}"
                )
        elif args.action == "revoke":
            try:
                k = run_db(settings, lambda db: admin.revoke_key(db, args.key))
            except MemserverError as exc:
                raise SystemExit(f"memserver: {exc.message}") from None
            out(f"revoked key {k.id} ({k.key_prefix}…, {k.org_name}/{k.project_name})")


def _bound(k: Any) -> str:
    return "".join(f"  bound {c}={v}" for c in ("user_id", "agent_id") if (v := getattr(k, f"bound_{c}", None)))


def cmd_orgs(args: argparse.Namespace, settings: Settings) -> None:

    with database(settings) as settings:
        migrate_schema(settings)
        try:
            if args.action == "create":
                org_id = run_db(settings, lambda db: admin.create_org(db, args.name, owner_email=args.owner))
                out(f"org {args.name} {org_id}")
            elif args.action == "delete":
                run_db(settings, lambda db: admin.delete_org_named(db, args.name))
                out(f"deleted org {args.name} with its projects, memories and keys")
            else:
                for o in run_db(settings, admin.list_orgs):
                    out(f"{o['id']}  {o['name']}  projects={o['projects']}")
        except MemserverError as exc:
            raise SystemExit(f"memserver: {exc.message}") from None


def cmd_projects(args: argparse.Namespace, settings: Settings) -> None:

    with database(settings) as settings:
        migrate_schema(settings)
        try:
            if args.action == "create":
                pid = run_db(settings, lambda db: admin.create_project(db, args.org, args.name))
                out(f"project {args.org}/{args.name} {pid}")
            elif args.action == "delete":
                run_db(settings, lambda db: admin.delete_project_named(db, args.org, args.name))
                out(f"deleted project {args.org}/{args.name} with its memories and keys")
            else:
                for p in run_db(settings, lambda db: admin.list_projects(db, args.org)):
                    out(f"{p['id']}  {p['org']}/{p['name']}  active_keys={p['active_keys']}")
        except MemserverError as exc:
            raise SystemExit(f"memserver: {exc.message}") from None


def cmd_members(args: argparse.Namespace, settings: Settings) -> None:

    with database(settings) as settings:
        migrate_schema(settings)
        where = f"{args.org}/{args.project}" if args.project else args.org
        try:
            if args.action in ("add", "set-role"):
                run_db(settings, lambda db: admin.add_member(db, args.org, args.email, args.role, args.project))
                out(f"{args.email} is {args.role.upper()} in {where}")
            elif args.action == "remove":
                if not run_db(settings, lambda db: admin.remove_member(db, args.org, args.email, args.project)):
                    raise SystemExit(f"memserver: {args.email} is not a member of {where}")
                out(f"removed {args.email} from {where}")
            else:
                for m in run_db(settings, lambda db: admin.list_members(db, args.org, args.project)):
                    out(f"{m.email}  {m.role}")
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
            migrate_schema(settings)
            n = run_db(settings, run)
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
        migrate_schema(settings)
        try:
            counts = run_db(settings, run)
        except MemserverError as exc:
            raise SystemExit(f"memserver: {exc.message}") from None
    out(f"imported into {args.org}/{args.project}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def cmd_backfill_event_dates(args: argparse.Namespace, settings: Settings) -> None:
    with database(settings) as settings:
        migrate_schema(settings)
        read, dated = run_db(settings, lambda db: event_dates.backfill(db))
    out(f"read {read} memories without event dates; {dated} name a time and now have one")
