"""Who may do what: the role checks every service runs on its `Principal`, and the rule that an organisation
never loses its last OWNER.

Roles are OWNER and READER, in an organisation and in a project. An org OWNER owns every project of the org;
anyone else needs a project role. A READER key only reads, whatever its member may do. Demotions and removals
lock the org's OWNER rows (`keep_an_owner`).
"""

from __future__ import annotations

import uuid

from memserver.domain.principal import Principal
from memserver.errors import Forbidden, invalid_field
from memserver.storage.repositories.tenants import TenantRepository

ROLES = ("OWNER", "READER")
PROJECT_NOT_FOUND = "Organization or project not found"


def require_role(principal: Principal) -> None:
    """Any role in the project (READER or OWNER)."""
    if principal.role is None:
        raise Forbidden(f"{principal.user_email} has no role in project {principal.project_name!r}")


def require_owner(principal: Principal, action: str) -> None:
    """OWNER of the project: writes memories, changes settings and members, deletes the project."""
    require_role(principal)
    if principal.role != "OWNER":
        raise Forbidden(
            f"{principal.user_email} is {principal.role} in project {principal.project_name!r}; {action} needs OWNER"
        )


def require_org(principal: Principal, org_id: str) -> uuid.UUID:
    """The org is the key's own (keys never reach into other organisations)."""
    if str(org_id) != str(principal.org_id):
        raise Forbidden("Unauthorized: this API key belongs to another organization")
    return principal.org_id


def require_org_key_owner(principal: Principal, action: str) -> None:
    """An org-scoped key of an org OWNER (its own org): manages the org, its members and its projects."""
    if principal.key_scope != "org":
        raise Forbidden(
            f"Unauthorized: {action} needs an organization-scoped key of an OWNER (memserver keys create --scope org)"
        )
    if principal.org_role != "OWNER":
        raise Forbidden(
            f"Unauthorized: {principal.user_email} is {principal.org_role} of the org; {action} needs OWNER"
        )


def require_org_owner(principal: Principal, org_id: str, action: str) -> uuid.UUID:
    """`require_org_key_owner` for the org a path names, which must be the key's own."""
    oid = require_org(principal, org_id)
    require_org_key_owner(principal, action)
    return oid


async def keep_an_owner(repo: TenantRepository, org_id: uuid.UUID, email: str, new_role: str | None) -> None:
    """Refuse a change that would leave the org without an OWNER: `email` made `new_role` (None: removed).

    Locks the org's OWNER rows first, so of two concurrent demotions of its last two OWNERs the second
    waits for the first and is refused (call it inside the transaction that makes the change)."""
    if new_role == "OWNER":
        return
    owners = await repo.lock_org_owners(org_id)
    member = await repo.get_member(org_id, email)
    if member is not None and member.id in owners and len(owners) <= 1:
        verb = "removed" if new_role is None else "demoted"
        message = f"{email} is the organization's last OWNER and cannot be {verb}; make another OWNER first"
        raise invalid_field("email" if new_role is None else "role", message)


def parse_role(role: str | None) -> str:
    value = (role or "").upper()
    if value not in ROLES:
        raise invalid_field("role", f"role must be one of {', '.join(ROLES)}")
    return value


def parse_email(email: str | None) -> str:
    value = (email or "").strip()
    if "@" not in value:
        raise invalid_field("email", "a valid email is required")
    return value
