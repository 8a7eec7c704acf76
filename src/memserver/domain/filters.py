"""The Mem0 filter language (contract §4): the AST, its parser and analysis. No SQL here:
`storage.filters` compiles a parsed filter to parameterised SQL.

Filter    = Condition | {"AND": [Filter...]} | {"OR": [Filter...]} | {"NOT": Filter}
Condition = {field: value} | {field: {op: value}}; sibling keys are ANDed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memserver.domain import limits
from memserver.domain.dates import parse_datetime
from memserver.domain.scope import ENTITY_FIELDS

DATE_FIELDS = ("created_at", "updated_at", "timestamp", "expiration_date")
ALLOWED_KEYS = [
    "AND",
    "OR",
    "NOT",
    "user_id",
    "agent_id",
    "app_id",
    "run_id",
    "created_at",
    "updated_at",
    "timestamp",
    "expiration_date",
    "text",
    "categories",
    "metadata",
    "keywords_search",
    "memory_ids",
    "keywords",
]
OPERATORS = {"in", "gte", "lte", "gt", "lt", "ne", "contains", "icontains", "eq"}

# camelCase spellings seen in the spec's JS samples (TS passes filters verbatim).
_CAMEL = {
    "userId": "user_id",
    "agentId": "agent_id",
    "appId": "app_id",
    "runId": "run_id",
    "sessionId": "run_id",
    "session_id": "run_id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "memoryIds": "memory_ids",
    "expirationDate": "expiration_date",
    "keywordsSearch": "keywords_search",
}


def field_name(key: str) -> str:
    """A filter key as the parser reads it: camelCase and `session_id` spellings canonical (`userId` -> `user_id`)."""
    return _CAMEL.get(key, key)


class FilterError(ValueError):
    """An invalid filter; the message is shown to the client with a 400."""


@dataclass(frozen=True)
class Cond:
    field: str
    op: str  # eq | ne | in | any | gt | gte | lt | lte | contains | icontains
    value: Any
    key: str | None = None  # metadata key


@dataclass(frozen=True)
class Bool:
    op: str  # AND | OR | NOT
    children: tuple[Node, ...] = field(default_factory=tuple)


Node = Cond | Bool


# ----------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------
def parse_filters(obj: Any) -> Node:
    """Parse a filters object; raises FilterError with a client-facing message."""
    if not isinstance(obj, dict):
        raise FilterError("filters must be a JSON object")
    return _parse_object(obj, 0)


def _check_depth(depth: int) -> None:
    n = limits.current().max_filter_depth
    if depth >= n:
        raise FilterError(f"filters nest AND/OR/NOT deeper than {n} levels (MEMSERVER_LIMITS__MAX_FILTER_DEPTH)")


def _check_list(name: str, items: Any) -> None:
    try:
        limits.check_list(name, items)
    except ValueError as exc:
        raise FilterError(str(exc)) from None


def _entity_value(key: str, value: Any) -> str:
    s = str(value)
    try:
        limits.check_entity_id(key, s)
    except ValueError as exc:
        raise FilterError(str(exc)) from None
    return s


def _parse_object(obj: dict[str, Any], depth: int) -> Node:
    parts: list[Node] = []
    for raw_key, value in obj.items():
        key = _CAMEL.get(raw_key, raw_key)
        if key in ("AND", "OR"):
            _check_depth(depth)
            if isinstance(value, dict):
                value = [{k: v} for k, v in value.items()]
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise FilterError(f"{key} takes a list of filter objects")
            _check_list(key, value)
            parts.append(Bool(key, tuple(_parse_object(v, depth + 1) for v in value)))
        elif key == "NOT":
            _check_depth(depth)
            if isinstance(value, list):
                if not all(isinstance(v, dict) for v in value):
                    raise FilterError("NOT takes a filter object")
                _check_list(key, value)
                inner: Node = Bool("AND", tuple(_parse_object(v, depth + 1) for v in value))
            elif isinstance(value, dict):
                inner = _parse_object(value, depth + 1)
            else:
                raise FilterError("NOT takes a filter object")
            parts.append(Bool("NOT", (inner,)))
        elif key in ALLOWED_KEYS:
            parts.extend(_parse_condition(key, value))
        else:
            raise FilterError(
                f"Top-level key must be a logical operator or an allowed field: {ALLOWED_KEYS} (got {raw_key!r})"
            )
    if len(parts) == 1:
        return parts[0]
    return Bool("AND", tuple(parts))


def _op_dict(value: Any) -> dict[str, Any] | None:
    """A {op: value} dict, or None when `value` is a bare value."""
    if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
        unknown = [k for k in value if k not in OPERATORS]
        if not unknown:
            return value
        if any(k in value for k in OPERATORS) or any(not re.fullmatch(r"[A-Za-z_]\w*", k) for k in unknown):
            bad = unknown[0]
            raise FilterError(f"Unsupported operator {bad!r}; use one of {sorted(OPERATORS)}")
    return None


def _parse_condition(key: str, value: Any) -> list[Node]:
    if key in ENTITY_FIELDS:
        return [_entity_cond(key, value)]
    if key in DATE_FIELDS:
        return _date_conds(key, value)
    if key == "categories":
        return [_categories_cond(value)]
    if key == "metadata":
        return _metadata_conds(value)
    if key in ("keywords", "text", "keywords_search"):
        return [_keywords_cond(key, value)]
    if key == "memory_ids":
        ops = _op_dict(value)
        ids = ops.get("in") if ops else value
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list):
            raise FilterError("memory_ids takes a list of memory ids")
        _check_list("memory_ids", ids)
        parsed = []
        for v in ids:
            try:
                parsed.append(uuid.UUID(str(v)))
            except ValueError:
                raise FilterError(f"memory_ids: {v!r} is not a valid UUID") from None
        return [Cond("memory_ids", "in", tuple(parsed))]
    raise FilterError(f"Unsupported filter field {key!r}")  # pragma: no cover


def _entity_cond(key: str, value: Any) -> Node:
    ops = _op_dict(value)
    if ops is None:
        if value == "*":
            return Cond(key, "any", None)
        if value is None:
            return Cond(key, "is_null", None)
        if isinstance(value, (dict, list)):
            raise FilterError(f"{key} takes a string, '*', or an operator object (eq, ne, in)")
        return Cond(key, "eq", _entity_value(key, value))
    parts: list[Node] = []
    for op, v in ops.items():
        if op == "eq":
            parts.append(Cond(key, "any", None) if v == "*" else Cond(key, "eq", _entity_value(key, v)))
        elif op == "ne":
            parts.append(Cond(key, "ne", _entity_value(key, v)))
        elif op == "in":
            if not isinstance(v, list) or not v:
                raise FilterError(f"{key}: 'in' takes a non-empty list")
            _check_list(f"{key}: 'in'", v)
            parts.append(Cond(key, "in", tuple(_entity_value(key, x) for x in v)))
        else:
            raise FilterError(f"Operator {op!r} is not supported for {key}; use eq, ne, in or '*'")
    return parts[0] if len(parts) == 1 else Bool("AND", tuple(parts))


def _datetime(value: Any, *, end_of_day: bool = False) -> datetime:
    try:
        return parse_datetime(value, end_of_day=end_of_day)
    except ValueError as exc:
        raise FilterError(str(exc)) from None


def _is_date_only(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()) is not None


def _date_conds(key: str, value: Any) -> list[Node]:
    col = "created_at" if key == "timestamp" else key
    ops = _op_dict(value)
    if ops is None:
        if isinstance(value, (dict, list)):
            raise FilterError(f"{key} takes a date or an operator object (gt, gte, lt, lte, ne, in)")
        return [_date_eq(col, value)]
    parts: list[Node] = []
    for op, v in ops.items():
        if op == "eq":
            raise FilterError(f"{key}: use a bare value for equality instead of 'eq'")
        if op in ("contains", "icontains"):
            raise FilterError(f"Operator {op!r} is not supported for {key}")
        if op == "in":
            if not isinstance(v, list) or not v:
                raise FilterError(f"{key}: 'in' takes a non-empty list")
            _check_list(f"{key}: 'in'", v)
            parts.append(Bool("OR", tuple(_date_eq(col, x) for x in v)))
        elif op == "ne":
            parts.append(Bool("NOT", (_date_eq(col, v),)))
        else:
            # A date-only bound covers its whole day: lte 2024-07-31 includes the 31st.
            if op in ("lte", "gt") and _is_date_only(v):
                bound = _datetime(v, end_of_day=True)
                op = "lt" if op == "lte" else "gte"
            else:
                bound = _datetime(v)
            parts.append(Cond(col, op, bound))
    return parts


def _date_eq(col: str, value: Any) -> Node:
    if _is_date_only(value):
        start, end = _datetime(value), _datetime(value, end_of_day=True)
        return Bool("AND", (Cond(col, "gte", start), Cond(col, "lt", end)))
    return Cond(col, "eq", _datetime(value))


def _categories_cond(value: Any) -> Node:
    ops = _op_dict(value)
    if ops is None:
        if isinstance(value, str):
            return Cond("categories", "in", (value,))
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            _check_list("categories", value)
            return Cond("categories", "in", tuple(value))
        raise FilterError("categories takes a list of names or an operator object (in, contains)")
    parts: list[Node] = []
    for op, v in ops.items():
        if op == "in":
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise FilterError("categories: 'in' takes a list of names")
            _check_list("categories: 'in'", v)
            parts.append(Cond("categories", "in", tuple(v)))
        elif op in ("contains", "icontains"):
            if not isinstance(v, str):
                raise FilterError(f"categories: '{op}' takes a string")
            parts.append(Cond("categories", "contains", v))
        else:
            raise FilterError(f"Operator {op!r} is not supported for categories; use in or contains")
    return parts[0] if len(parts) == 1 else Bool("AND", tuple(parts))


def _metadata_conds(value: Any) -> list[Node]:
    if not isinstance(value, dict):
        raise FilterError("metadata takes an object of {key: value} or {key: {op: value}}")
    _check_list("metadata", list(value))
    try:
        limits.check_json(value)
    except ValueError as exc:
        raise FilterError(f"metadata: {exc}") from None
    parts: list[Node] = []
    for k, v in value.items():
        ops = _op_dict(v)
        if ops is None:
            parts.append(Cond("metadata", "eq", v, key=k))
            continue
        for op, x in ops.items():
            if op == "eq":
                parts.append(Cond("metadata", "eq", x, key=k))
            elif op == "ne":
                parts.append(Cond("metadata", "ne", x, key=k))
            elif op in ("contains", "icontains"):
                if not isinstance(x, (str, int, float)):
                    raise FilterError(f"metadata.{k}: '{op}' takes a string")
                parts.append(Cond("metadata", op, x, key=k))
            else:
                raise FilterError(f"Operator {op!r} is not supported for metadata; use eq, ne or contains")
    return parts


def _keywords_cond(key: str, value: Any) -> Node:
    ops = _op_dict(value)
    if ops is None:
        if not isinstance(value, str):
            raise FilterError(f"{key} takes a string or an operator object (contains, icontains)")
        return Cond("keywords", "icontains", value)
    parts: list[Node] = []
    for op, v in ops.items():
        if op not in ("contains", "icontains") or not isinstance(v, str):
            raise FilterError(f"{key} supports 'contains' and 'icontains' with a string")
        parts.append(Cond("keywords", op, v))
    return parts[0] if len(parts) == 1 else Bool("AND", tuple(parts))


# ----------------------------------------------------------------------------------------------
# analysis
# ----------------------------------------------------------------------------------------------
def is_entity_scoped(node: Node) -> bool:
    """True when every match is positively scoped to at least one entity id (eq, in or '*')."""
    if isinstance(node, Cond):
        return node.field in ENTITY_FIELDS and node.op in ("eq", "in", "any")
    if node.op == "AND":
        return any(is_entity_scoped(c) for c in node.children)
    if node.op == "OR":
        return bool(node.children) and all(is_entity_scoped(c) for c in node.children)
    return False


def entity_equalities(node: Node | None) -> dict[str, str]:
    """The entity id equalities a filter requires of every memory it matches (its top-level AND).

    Graph reads are scoped by these; a filter without any (only an OR, or `*`) reads no relations.
    """
    out: dict[str, str] = {}
    if isinstance(node, Cond):
        if node.field in ENTITY_FIELDS and node.op == "eq" and isinstance(node.value, str):
            out[node.field] = node.value
    elif isinstance(node, Bool) and node.op == "AND":
        for child in node.children:
            out.update(entity_equalities(child))
    return out


def and_all(*nodes: Node | None) -> Node | None:
    present = [n for n in nodes if n is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Bool("AND", tuple(present))
