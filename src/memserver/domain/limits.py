"""How much work one request may ask for, and the structural checks every JSON value passes.

The limits are configuration (`MEMSERVER_LIMITS__*`); the HTTP edge installs the process's limits
for each request (`use`), and validators read them with `current()`, so pure code (the filter
parser, request models) enforces them without being handed the settings.
"""

from __future__ import annotations

import math
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

# Integers must fit what the JSON encoder (orjson) and Postgres bigint can hold.
MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
MAX_ROW_ID = 2**63 - 1  # identity columns are Postgres bigint


def is_row_id(n: int) -> bool:
    """Whether a row could have this numeric id (an identity column: 1 to bigint's largest). Any other
    integer is "not found" without a query: past bigint, the driver would fail the statement."""
    return 1 <= n <= MAX_ROW_ID


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 4 * 1024 * 1024
    max_import_bytes: int = 512 * 1024 * 1024  # the import's own body limit (a project's backup)
    max_messages: int = 1_000
    max_text_chars: int = 50_000
    max_query_chars: int = 8_000
    max_metadata_bytes: int = 64 * 1024
    max_json_depth: int = 32
    max_filter_depth: int = 16
    max_list_items: int = 1_000
    max_entity_id_chars: int = 255
    # The media of one add (MEMSERVER_DOCUMENTS__*): counts and inline sizes are refused before any work.
    max_document_parts: int = 5
    max_document_bytes: int = 5_000_000
    max_images: int = 5
    max_image_bytes: int = 2_000_000
    max_categories: int = 50
    max_category_chars: int = 500


_current: ContextVar[Limits] = ContextVar("memserver_limits", default=Limits())  # noqa: B039


def current() -> Limits:
    """The limits of the request being handled (the defaults outside a request)."""
    return _current.get()


def use(limits: Limits) -> Token[Limits]:
    return _current.set(limits)


def reset(token: Token[Limits]) -> None:
    _current.reset(token)


def check_json(value: Any, *, stored: bool = True) -> None:
    """Raise ValueError for what no stored JSON can hold: NUL, lone surrogates, nesting deeper than
    MEMSERVER_LIMITS__MAX_JSON_DEPTH and, for a value that is `stored` (metadata), integers past 64 bits
    and non-finite floats. Iterative: a deep value cannot blow the stack."""
    limit = current().max_json_depth
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            check_text(v)
        elif isinstance(v, (dict, list, tuple)):
            _push(stack, v, depth, limit)
        elif not stored or isinstance(v, bool):
            continue
        elif isinstance(v, int) and not MIN_INT <= v <= MAX_INT:
            raise ValueError("integers must fit in 64 bits")
        elif isinstance(v, float) and not math.isfinite(v):
            raise ValueError("numbers must be finite")


def _push(
    stack: list[tuple[Any, int]], v: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int, limit: int
) -> None:
    if depth >= limit:
        raise ValueError(f"JSON nested deeper than {limit} levels (MEMSERVER_LIMITS__MAX_JSON_DEPTH)")
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(k, str):
                check_text(k)
            stack.append((x, depth + 1))
    else:
        stack.extend((x, depth + 1) for x in v)


def check_text(s: str) -> None:
    """Postgres text holds neither NUL nor lone UTF-16 surrogates (which JSON's \\ud800 escapes produce)."""
    if "\x00" in s:
        raise ValueError("NUL characters are not allowed")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("lone UTF-16 surrogates are not allowed (invalid Unicode)") from None


def check_chars(what: str, value: str) -> None:
    """A text that goes into prompts or is stored (a message, instructions, a project setting)."""
    n = current().max_text_chars
    if len(value) > n:
        raise ValueError(f"{what} is longer than {n} characters (MEMSERVER_LIMITS__MAX_TEXT_CHARS)")


def check_json_size(what: str, encoded: bytes) -> None:
    """A stored JSON value other than text (metadata, a free-form setting), by its encoded size."""
    n = current().max_metadata_bytes
    if len(encoded) > n:
        raise ValueError(f"{what} is larger than {n} bytes as JSON (MEMSERVER_LIMITS__MAX_METADATA_BYTES)")


def check_entity_id(name: str, value: str) -> None:
    n = current().max_entity_id_chars
    if len(value) > n:
        raise ValueError(f"{name} is longer than {n} characters (MEMSERVER_LIMITS__MAX_ENTITY_ID_CHARS)")


def check_categories(items: list[Any]) -> None:
    """`custom_categories` (of an add, or a project setting): each category goes into every extraction prompt,
    so their number and the size of each (name and description) are bounded."""
    lim = current()
    pairs = [(k, v) for item in items for k, v in (item.items() if isinstance(item, dict) else [(item, "")])]
    if len(pairs) > lim.max_categories:
        raise ValueError(
            f"custom_categories has more than {lim.max_categories} categories (MEMSERVER_LIMITS__MAX_CATEGORIES)"
        )
    for name, description in pairs:
        if len(str(name)) + len(str(description)) > lim.max_category_chars:
            raise ValueError(
                f"custom_categories: {str(name)[:40]!r} is longer than {lim.max_category_chars} characters, "
                "name and description together (MEMSERVER_LIMITS__MAX_CATEGORY_CHARS)"
            )


def check_list(name: str, items: Any) -> None:
    n = current().max_list_items
    if isinstance(items, (list, tuple)) and len(items) > n:
        raise ValueError(f"{name} has more than {n} items (MEMSERVER_LIMITS__MAX_LIST_ITEMS)")
