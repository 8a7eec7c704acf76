"""JSON encoding for responses and exports: orjson, and the standard library for what orjson refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _fallback_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def dumps(content: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """orjson's bytes; jsonb keeps numbers exactly and hands 1e135 back as a 136-digit integer, which
    orjson (64-bit integers only) refuses: the standard library writes any integer."""
    try:
        return orjson.dumps(content, default=default, option=_OPTIONS)
    except TypeError:

        def both(value: Any) -> Any:
            if default is not None:
                try:
                    return default(value)
                except TypeError:
                    pass
            return _fallback_default(value)

        return json.dumps(content, default=both, ensure_ascii=False).encode()
