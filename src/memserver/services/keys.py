"""API keys by id: what an org OWNER's org-scoped key does over HTTP (`/api/v1/orgs/organizations/{org}/keys/`),
and the rules every new key follows, also from the command line (`services.admin.create_key`, by names).

A key belongs to a member of its org and has a default project. Making one never changes an existing member's
roles (its own `role` only caps them); a new email becomes a member. A key is shown once: only its hash is kept.
An org keeps one key that can manage it over HTTP (org-scoped, of an OWNER, not read-only): revoking the last
is refused, as demoting the last OWNER is.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from memserver.domain import limits
from memserver.domain.binding import BINDABLE
from memserver.domain.principal import Principal
from memserver.domain.rows.tenancy import KeyRow
from memserver.errors import BadRequest, MemserverError, NotFound, invalid, invalid_field
from memserver.services import permissions
from memserver.storage.db import Database
from memserver.storage.repositories.keys import KeyRepository
from memserver.storage.repositories.tenants import TenantRepository

SCOPES = ("project", "org")
NOT_FOUND = "Key not found"
MAX_NAME_CHARS = 200
ACTION = "managing API keys"
BOUND_FIELDS = ("bind_user_id", "bind_agent_id")
DEFAULT_FIELDS = ("default_user_id", "default_agent_id")
T = TypeVar("T")


@dataclass(frozen=True)
class NewKey:
    """A key to make: whose (`email`), for which project, reaching what (`scope`), capped at `role`, bound to
    an entity (`binding`: user_id/agent_id) and with default entity ids (`defaults`)."""

    name: str
    project_id: uuid.UUID
    email: str
    scope: str = "project"
    role: str | None = None
    binding: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str | None] = field(default_factory=dict)


# -- the rules of every new key ---------------------------------------------------------------------
def binding_and_defaults(
    binding: Mapping[str, str | None] | None, defaults: Mapping[str, str | None] | None
) -> tuple[dict[str, str], dict[str, str | None]]:
    """The key's binding (ids given, trimmed) and its defaults, which a binding sets (and may not contradict)."""
    bound = {k: v.strip() for k, v in (binding or {}).items() if v is not None}
    for k, v in bound.items():
        if k not in BINDABLE:
            raise invalid_field(f"bind_{k}", f"a key can be bound to {' or '.join(BINDABLE)}, not {k}")
        if not v or v == "*":
            raise invalid_field(f"bind_{k}", f"a key's bound {k} must be one entity id")
    merged = dict(defaults or {})
    for k, v in bound.items():
        if merged.get(k) not in (None, v):
            raise invalid_field(f"default_{k}", f"a key bound to {k} {v!r} cannot default to {k} {merged[k]!r}")
        merged[k] = v
    return bound, merged


async def key_member(
    repo: TenantRepository, org_id: uuid.UUID, project_id: uuid.UUID, email: str, *, scope: str, role: str | None
) -> uuid.UUID:
    """The member a new key belongs to. A new email becomes a member with `role` (OWNER when none is given):
    in the org for an org-scoped key (and in the key's project, when that role is READER), in the project
    otherwise. An existing member's roles are never changed by making a key: the key's role only caps them."""
    member = await repo.get_member(org_id, email)
    if member is None:
        member_role = role or "OWNER"
        if scope == "org":
            member_id = await repo.add_member(org_id, email, member_role)
            if member_role != "OWNER":
                await repo.set_project_member(project_id, member_id, member_role)
        else:
            member_id = await repo.add_member(org_id, email, "READER")
            await repo.set_project_member(project_id, member_id, member_role)
        return member_id
    if scope == "project" and member.role != "OWNER" and await repo.project_role(project_id, member.id) is None:
        raise invalid_field(
            "email",
            f"{email} has no role in this project, so a key of theirs for it could do nothing: give them one first "
            "(memserver members add EMAIL --org ORG --project PROJECT --role READER|OWNER)",
        )
    return member.id


async def create_in(repo: TenantRepository, org_id: uuid.UUID, new: NewKey) -> tuple[uuid.UUID, str]:
    """Make the key (in the caller's transaction, the project known to be the org's); returns (id, plaintext)."""
    bound, defaults = binding_and_defaults(new.binding, new.defaults)
    member_id = await key_member(repo, org_id, new.project_id, new.email, scope=new.scope, role=new.role)
    return await repo.create_key(
        new.project_id,
        new.name,
        member_id,
        new.email,
        scope=new.scope,
        defaults=defaults,
        binding=bound,
        role=new.role,
    )


# -- over HTTP, for an org OWNER's org-scoped key ---------------------------------------------------
def _checked(problems: dict[str, list[str]], key: str, check: Callable[[], T]) -> T | None:
    """`check()`, or None with its message recorded under `key` when it refuses the value."""
    try:
        return check()
    except (MemserverError, ValueError) as exc:
        problems[key] = [exc.message if isinstance(exc, MemserverError) else str(exc)]
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _entity_id(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    if key in BOUND_FIELDS and value.strip() in ("", "*"):
        raise ValueError(f"a key's bound {key.removeprefix('bind_')} must be one entity id")
    limits.check_entity_id(key, value)
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("name is required")
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"name must be at most {MAX_NAME_CHARS} characters")
    return value.strip()


def _project_id(body: dict[str, Any]) -> uuid.UUID:
    if body.get("project_id") is None:
        raise ValueError("project_id is required")
    try:
        return uuid.UUID(str(body["project_id"]))
    except ValueError:
        raise ValueError("project_id must be a project's id") from None


def _scope(value: Any) -> str:
    if value not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    return str(value)


def parse_new_key(body: dict[str, Any]) -> NewKey:
    """A create request's body, checked field by field: every bad field is named in one 400."""
    problems: dict[str, list[str]] = {}
    name = _checked(problems, "name", lambda: _name(body.get("name")))
    project_id = _checked(problems, "project_id", lambda: _project_id(body))
    email = _checked(problems, "email", lambda: permissions.parse_email(_text(body.get("email"))))
    role = None
    if body.get("role") is not None:
        role = _checked(problems, "role", lambda: permissions.parse_role(_text(body.get("role"))))
    scope = _checked(problems, "scope", lambda: _scope(body.get("scope") or "project"))
    ids = {k: _checked(problems, k, functools.partial(_entity_id, body, k)) for k in (*BOUND_FIELDS, *DEFAULT_FIELDS)}
    binding = {k.removeprefix("bind_"): v for k, v in ids.items() if k in BOUND_FIELDS and v is not None}
    defaults = {k.removeprefix("default_"): v for k, v in ids.items() if k in DEFAULT_FIELDS}
    if not problems:
        try:
            binding_and_defaults(binding, defaults)
        except BadRequest as exc:  # names its field
            problems.update(exc.extra["errors"])
    if problems:
        raise invalid(problems)
    assert name is not None
    assert project_id is not None
    assert email is not None
    assert scope is not None
    return NewKey(name, project_id, email, scope, role, binding, defaults)


async def list_keys(
    db: Database, principal: Principal, org_id: str, *, project_id: str | None, include_revoked: bool
) -> list[KeyRow]:
    oid = permissions.require_org_owner(principal, org_id, ACTION)
    pid = None
    if project_id:
        try:
            pid = uuid.UUID(project_id)
        except ValueError:
            raise invalid_field("project_id", "project_id must be a project's id") from None
    async with db.connect() as conn:
        return await KeyRepository(conn).of_org(oid, project_id=pid, include_revoked=include_revoked)


async def create_key(db: Database, principal: Principal, org_id: str, body: dict[str, Any]) -> tuple[KeyRow, str]:
    """A new key (the plaintext is returned once, never stored) and its listing."""
    oid = permissions.require_org_owner(principal, org_id, ACTION)
    new = parse_new_key(body)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        project = await repo.get_project(new.project_id)
        if project is None or project.org_id != oid:
            raise invalid_field("project_id", "no such project in this organization")
        key_id, key = await create_in(repo, oid, new)
        row = await KeyRepository(conn).get(oid, key_id)
    assert row is not None
    return row, key


async def revoke_key(db: Database, principal: Principal, org_id: str, key_id: str) -> None:
    """Revoke an active key of the org (404: unknown, another org's, already revoked); never its last key that
    can manage it (400), so the org is never locked out of its own management."""
    oid = permissions.require_org_owner(principal, org_id, ACTION)
    try:
        kid = uuid.UUID(key_id)
    except ValueError:
        raise NotFound(NOT_FOUND) from None
    async with db.transaction() as conn:
        keys = KeyRepository(conn)
        row = await keys.get(oid, kid)
        if row is None or row.revoked_at is not None:
            raise NotFound(NOT_FOUND)
        await TenantRepository(conn).lock_org_owners(oid)  # concurrent revocations of the last two take turns
        if await keys.managing(oid) == [kid]:
            raise invalid_field(
                "key_id",
                "this is the organization's last key that can manage it (an org-scoped key of an OWNER); "
                "create another first",
            )
        if not await keys.revoke(oid, kid):
            raise NotFound(NOT_FOUND)
