"""Dependencies: resources built once in the lifespan, the caller's Principal, and the role each route needs.

Every route declares the role it needs in its signature, with one of `ReaderDep`, `OwnerDep`, `OrgOwnerDep`
(the Principal it acts as) or `dependencies=[PUBLIC]` (no key), as Polar's `webhook/auth.py` does.
`route_role(route)` reads the declaration back; /openapi.json publishes it on each operation
(`x-memserver-role`), and one test walks them all (`tests/api/test_route_roles.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

import orjson
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from memserver import metrics
from memserver.api.kit.scope import RATELIMIT_HEADERS
from memserver.domain import binding
from memserver.domain.principal import Principal
from memserver.errors import Forbidden, Unauthorized
from memserver.services import auth, permissions, ratelimit
from memserver.services.runtime import Runtime

INVALID_KEY = "Invalid API key. Create one with `memserver keys create` and send it as `Authorization: Token <key>`."
F = TypeVar("F", bound=Callable[..., Any])


async def get_runtime(request: Request) -> Runtime:  # async: FastAPI runs sync dependencies in a thread
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]  # the process's resources, built once in the lifespan


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() not in ("token", "bearer") or not key:
        raise Unauthorized(INVALID_KEY)
    runtime: Runtime = request.app.state.runtime
    principal = await auth.resolve_key(runtime.db, runtime.key_cache, key)
    if principal is None:
        raise Unauthorized(INVALID_KEY)
    org_id, project_id = await _named_project(request)
    if org_id is not None or project_id is not None:
        principal = await auth.act_on(runtime.db, runtime.key_cache, principal, org_id, project_id)
    permissions.require_role(principal)
    if principal.binding:
        _bound_key_may_call(request, principal)
    if runtime.limiter.enabled:
        decision = await runtime.limiter.check(principal)
        if decision is not None:
            request.scope[RATELIMIT_HEADERS] = decision.headers()  # the edge adds them to the response
            if not decision.allowed:
                metrics.RATE_LIMITED.inc()
                raise ratelimit.refusal(decision)
    return principal


async def _named_project(request: Request) -> tuple[str | None, str | None]:
    """The `org_id`/`project_id` a request names (query string or top-level JSON body; every SDK can send
    them). Path-named projects (`/api/v1/orgs/...`) are resolved by their routes."""
    org = request.query_params.get("org_id") or None
    project = request.query_params.get("project_id") or None
    if (
        request.method in ("POST", "PUT", "PATCH", "DELETE")
        and (org is None or project is None)
        and _reads_body(request)
    ):
        body = await request.body()  # cached on the request: the route's body parsing reuses it
        if b'"org_id"' in body or b'"project_id"' in body:
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                data = None
            if isinstance(data, dict):
                org = org or _str_or_none(data.get("org_id"))
                project = project or _str_or_none(data.get("project_id"))
    return org, project


def streams_body(fn: F) -> F:
    """Declare that this route reads its (large) body as a stream itself: authentication does not read it for a
    named project (the route names its project with `?project_id=`), so it is never held in memory."""
    fn.streams_body = True  # type: ignore[attr-defined]
    return fn


def _reads_body(request: Request) -> bool:
    return not getattr(getattr(request.scope.get("route"), "endpoint", None), "streams_body", False)


def confines_bound_keys(fn: F) -> F:
    """Declare that this route confines a bound key to its entity (`memserver.domain.binding`) itself.

    Every route not so declared refuses bound keys with 403: a route added later is closed to them until
    someone makes it confine them."""
    fn.confines_bound_keys = True  # type: ignore[attr-defined]
    return fn


def _bound_key_may_call(request: Request, principal: Principal) -> None:
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    if not getattr(endpoint, "confines_bound_keys", False):
        raise Forbidden(
            f"This API key is bound to {binding.describe(principal.binding)}: it can add, list, search, read, "
            "update and delete that entity's memories (and read the events of its adds), nothing else."
        )


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


PrincipalDep = Annotated[Principal, Depends(authenticate)]  # a valid key with a role; declares nothing


class Role(StrEnum):
    """What a route needs, checked for the project the request acts on (`org_id`/`project_id` named in the path,
    the query or the body; else the key's own)."""

    PUBLIC = "PUBLIC"  # no key (health, readiness, metrics)
    READER = "READER"  # any role in the project: reads, and the searches and lists sent as POST
    OWNER = "OWNER"  # OWNER of the project: writes memories, settings, members, webhooks, graph
    ORG_OWNER = "ORG_OWNER"  # an org-scoped key of an org OWNER: the org, its members and projects


ROLE_ATTR = "memserver_required_role"


def _gate(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def gate(request: Request, principal: PrincipalDep) -> Principal:
        params = request.path_params
        if "org_id" in params and "project_id" in params:  # /orgs/{org_id}/projects/{project_id}/...: acts on it
            runtime: Runtime = request.app.state.runtime
            org, project = segment(params["org_id"]), segment(params["project_id"])
            principal = await auth.act_on(runtime.db, runtime.key_cache, principal, org, project)
        # (any other path that names a project, as the webhooks' do, must name the one acted on: its service checks)
        permissions.require_role(principal)
        if role is Role.OWNER and principal.role != "OWNER":
            permissions.require_owner(principal, _action(request))
        elif role is Role.ORG_OWNER:
            permissions.require_org_key_owner(principal, _action(request))
        return principal

    setattr(gate, ROLE_ATTR, role)
    return gate


def _action(request: Request) -> str:
    """What a refused request asked for, as its method and route template (`DELETE /api/v1/webhooks/{webhook_id}`)."""
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path_format', None) or request.url.path}"


async def _public() -> None:
    """No key needed."""


setattr(_public, ROLE_ATTR, Role.PUBLIC)

ReaderDep = Annotated[Principal, Depends(_gate(Role.READER))]
OwnerDep = Annotated[Principal, Depends(_gate(Role.OWNER))]
OrgOwnerDep = Annotated[Principal, Depends(_gate(Role.ORG_OWNER))]
PUBLIC = Depends(_public)  # `@router.get(..., dependencies=[PUBLIC])`


def route_role(route: APIRoute) -> Role | None:
    """The role a route declares (None: it declares none), read from its dependency tree."""
    stack: list[Dependant] = [route.dependant]
    while stack:
        dependant = stack.pop()
        role = getattr(dependant.call, ROLE_ATTR, None)
        if isinstance(role, Role):
            return role
        stack.extend(dependant.dependencies)
    return None


def error_shape(shape: str) -> Callable[[F], F]:
    """Declare the Mem0 shape of this route's error bodies: 'error', 'message', or the add shape 'add'.

    Services raise plain errors; `api.error_handlers` renders them in the shape of the route that was called.
    """

    def mark(fn: F) -> F:
        fn.error_shape = shape  # type: ignore[attr-defined]
        return fn

    return mark


def segment(value: str) -> str:
    """Path params arrive still percent-encoded (raw-path routing); decode one segment."""
    return unquote(value)
