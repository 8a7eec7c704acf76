"""Filters as the list, search and delete routes take them: the `filters` object, entity ids, body shortcuts."""

from __future__ import annotations

from typing import Any

from memserver.domain.filters import Cond, FilterError, Node, and_all, is_entity_scoped, parse_filters
from memserver.errors import BadRequest

ENTITY_REQUIRED_V1 = "One of the filters: app_id, user_id, agent_id, run_id is required!"
ENTITY_REQUIRED_SEARCH = "At least one of the filters: agent_id, user_id, app_id, run_id is required!"
TOP_LEVEL_IDS_V3 = 'Entity ids must be given inside `filters` on this endpoint, e.g. {"filters": {"user_id": "alice"}}'


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
