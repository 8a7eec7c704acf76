"""Turning request fields into service inputs: ids, filters, pagination, dates."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from memserver.domain import limits
from memserver.domain.dates import parse_timestamp, to_date
from memserver.domain.filters import (
    Bool,
    Cond,
    FilterError,
    Node,
    and_all,
    is_entity_scoped,
    parse_filters,
)
from memserver.domain.scope import ENTITY_FIELDS
from memserver.errors import BadRequest, NotFound

ENTITY_REQUIRED_V1 = "One of the filters: app_id, user_id, agent_id, run_id is required!"
ENTITY_REQUIRED_SEARCH = "At least one of the filters: agent_id, user_id, app_id, run_id is required!"
MAX_PAGE = 10**9


def query_entity_ids(
    user_id: str | None, agent_id: str | None, app_id: str | None, run_id: str | None
) -> dict[str, str]:
    """The entity ids given as query parameters (empty ones count as absent)."""
    given = (("user_id", user_id), ("agent_id", agent_id), ("app_id", app_id), ("run_id", run_id))
    out = {k: v for k, v in given if v}
    for k, v in out.items():
        try:
            limits.check_entity_id(k, v)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    return out


def metadata_param(raw: str | None) -> dict[str, Any] | None:
    """A `metadata` query parameter: a JSON object (absent or empty = no constraint)."""
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        raise BadRequest("metadata must be a JSON object") from None
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be a JSON object")
    try:
        limits.check_json(meta)  # JSON escapes (\u0000, \ud800) get past the edge's NUL check
    except ValueError as exc:
        raise BadRequest(f"metadata: {exc}") from None
    return meta or None


def memory_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequest("memory_id should be a valid UUID") from None


def as_date(value: date | datetime | None) -> date | None:
    return None if value is None else to_date(value)


def as_timestamp(value: int | float | str | None) -> datetime | None:
    """Unix seconds (int/float, or a numeric string) or an ISO-8601 string."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def filters_node(filters: dict[str, Any] | None) -> Node | None:
    if not filters:
        return None
    try:
        return parse_filters(filters)
    except FilterError as exc:
        raise BadRequest(str(exc)) from None


def entity_node(ids: dict[str, str]) -> Node | None:
    conds = [Cond(k, "any", None) if v == "*" else Cond(k, "eq", v) for k, v in ids.items()]
    return and_all(*conds)


def flat_entity_ids(filters: dict[str, Any] | None) -> dict[str, str]:
    """Entity ids given as plain values inside `filters` (how the Python SDK sends them on add)."""
    out: dict[str, str] = {}
    if not filters:
        return out
    node = filters_node(filters)
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Cond) and n.field in ENTITY_FIELDS and n.op == "eq":
            out.setdefault(n.field, n.value)
        elif isinstance(n, Bool) and n.op == "AND":
            stack.extend(n.children)
    return out


def require_scope(node: Node | None, message: str) -> Node:
    if node is None or not is_entity_scoped(node):
        raise BadRequest(message)
    return node


def shortcut_nodes(
    *,
    categories: list[str] | str | None = None,
    metadata: dict[str, Any] | None = None,
    keywords: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    latest_only: bool = False,
) -> Node | None:
    """Body-level shortcuts (`categories`, `metadata`, `keywords`, `start_date`...) as filter nodes."""
    spec: dict[str, Any] = {}
    if categories:
        cats = [c.strip() for c in categories.split(",")] if isinstance(categories, str) else categories
        spec["categories"] = {"in": [c for c in cats if c]}
    if metadata:
        spec["metadata"] = metadata
    if keywords:
        spec["keywords"] = {"icontains": keywords}
    date_ops: dict[str, str] = {}
    if start_date:
        date_ops["gte"] = start_date
    if end_date:
        date_ops["lte"] = end_date
    if date_ops:
        spec["created_at"] = date_ops
    node = filters_node(spec) if spec else None
    if latest_only:
        node = and_all(node, Cond("replaced_by", "is_null", None))
    return node


def check_page(
    page: int | None, page_size: int | None, *, default_size: int = 100, max_size: int = 200
) -> tuple[int, int]:
    p = 1 if page is None else page
    size = default_size if page_size is None else page_size
    if p < 1 or p > MAX_PAGE:  # past any real end, and an OFFSET the database could not take
        raise NotFound("Invalid page.")
    if size < 1 or size > max_size:
        raise BadRequest(f"page_size must be between 1 and {max_size}")
    return p, size


def link_base(request: Request, public_url: str | None) -> str:
    """Scheme and host for absolute links: MEMSERVER_PUBLIC_URL, or the request's own when its Host header is
    allowed (MEMSERVER_ALLOWED_HOSTS); otherwise "" (a relative link), so a forged Host never reaches a client."""
    if public_url:
        return public_url.rstrip("/")
    allowed: list[str] = request.app.state.memserver.settings.allowed_hosts
    host = request.url.hostname or ""
    if "*" in allowed or host.strip("[]").lower() in {h.lower() for h in allowed}:
        return str(request.base_url).rstrip("/")
    return ""


def envelope(
    request: Request, public_url: str | None, results: list[Any], total: int, page: int, page_size: int
) -> dict[str, Any]:
    """DRF-style page: {count, next, previous, results}; a page past the end is a 404."""
    if page > 1 and (page - 1) * page_size >= total:
        raise NotFound("Invalid page.")

    def link(n: int) -> str:
        params = dict(request.query_params)
        params["page"] = str(n)
        params["page_size"] = str(page_size)
        return f"{link_base(request, public_url)}{request.url.path}/?{urlencode(params)}"

    return {
        "count": total,
        "next": link(page + 1) if page * page_size < total else None,
        "previous": link(page - 1) if page > 1 else None,
        "results": results,
    }
