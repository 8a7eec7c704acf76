"""Compiling a parsed filter (`memserver.domain.filters`) to SQLAlchemy Core; every value is a bound parameter."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, false, func, literal, not_, or_, true
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TEXT
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from memserver.domain.filters import Bool, FilterError, Node
from memserver.domain.scope import ENTITY_FIELDS
from memserver.storage.models import Memory, table_of


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def compile_filter(node: Node, cols: ReadOnlyColumnCollection[str, Any] | None = None) -> ColumnElement[bool]:
    """The filter over the memories table, or over `cols`: a relation with its columns (the memories as they
    stood at a moment, `repositories.memory_states`)."""
    t = table_of(Memory).c if cols is None else cols
    if isinstance(node, Bool):
        children = [compile_filter(c, cols) for c in node.children]
        if node.op == "AND":
            return and_(true(), *children)
        if node.op == "OR":
            return or_(false(), *children)
        # SQL NOT of NULL is NULL: without the coalesce, NOT {"categories": {"in": [...]}} would drop
        # every memory without categories, and NOT {"user_id": x} every memory without a user.
        return not_(func.coalesce(and_(true(), *children), false()))
    f, op, v = node.field, node.op, node.value
    if f in ENTITY_FIELDS:
        col = t[f]
        if op == "eq":
            same: ColumnElement[bool] = col == v  # v is a bound value of any type
            return same
        if op == "in":
            return col.in_(list(v))
        if op == "any":
            return col.is_not(None)
        if op == "is_null":
            return col.is_(None)
        if op == "ne":  # ne also matches nulls
            return or_(col.is_(None), col != v)
    if f in ("created_at", "updated_at", "expiration_date"):
        col = t[f]
        value: Any = v
        if f == "expiration_date":  # a date column: compare calendar days (UTC)
            value = v.astimezone(UTC).date()
        compared: ColumnElement[bool] = {
            "eq": lambda: col == value,
            "gt": lambda: col > value,
            "gte": lambda: col >= value,
            "lt": lambda: col < value,
            "lte": lambda: col <= value,
        }[op]()
        return compared
    if f == "categories":
        col = t.categories
        if op == "in":
            overlaps: ColumnElement[bool] = col.overlap(cast(list(v), ARRAY(TEXT)))  # an ARRAY operator
            return overlaps
        # contains: case-insensitive substring of any category
        return func.array_to_string(func.coalesce(col, cast([], ARRAY(TEXT))), "\x1f").ilike(
            "%" + _like_escape(v) + "%", escape="\\"
        )
    if f == "metadata":
        col = t.metadata
        k = node.key or ""
        contains = col.op("@>", is_comparison=True)(cast(literal({k: v}, JSONB), JSONB))
        if op == "eq":
            return contains
        if op == "ne":
            return not_(func.coalesce(contains, false()))
        text_v = str(v)
        like = col[k].astext.like if op == "contains" else col[k].astext.ilike
        in_array = col[k].op("@>", is_comparison=True)(func.jsonb_build_array(v))
        return or_(
            and_(func.jsonb_typeof(col[k]) == "array", in_array),
            and_(func.jsonb_typeof(col[k]) != "array", like("%" + _like_escape(text_v) + "%", escape="\\")),
        )
    if f == "keywords":
        col = t.memory
        pattern = "%" + _like_escape(v) + "%"
        return col.like(pattern, escape="\\") if op == "contains" else col.ilike(pattern, escape="\\")
    if f == "memory_ids":
        return t.id.in_(list(v))
    if f == "replaced_by" and op == "is_null":  # latest_only
        return t.replaced_by.is_(None)
    raise FilterError(f"cannot compile filter on {f}")  # pragma: no cover
