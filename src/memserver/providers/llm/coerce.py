"""Shape coercion: a decoded reply made to fit the reply model's JSON schema where the meaning is unambiguous.

Where the list sits: `{"response": {...}}` is unwrapped; a lone list under another key (Mem0's `{"memory":
[...]}`) is read as the root's list, with a note; a bare list becomes `{root: list}`; an object where a list
belongs becomes a list of one. Strings as items: a string where an object item belongs becomes `{first
required string property: s}` (`{"facts": ["Likes tennis"]}`). Empty values: `null` where a list belongs is
`[]`; `null`, `"None"` or `""` in an optional property is removed (its default applies). Types: numeric and
boolean strings are typed as the schema says, `"1, 3"` becomes `[1, 3]`, enum values match in any case.
Unknown keys stay unless the schema forbids them (pydantic ignores them); task-specific aliases (`NONE` for
`NOOP`) are the reply model's business.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_INT = re.compile(r"\s*[-+]?\d+\s*")
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
_EMPTY = (None, "", "None", "none", "null", "NULL")
_BOOLS = {"true": True, "false": False, "yes": True, "no": False}


@functools.lru_cache(maxsize=64)
def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The reply model's JSON schema with every `$ref` resolved (the models are fixed classes)."""
    schema = model.model_json_schema()
    resolved: dict[str, Any] = _resolve(schema, schema.get("$defs") or {})
    return resolved


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
            return _resolve({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
        return {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_resolve(v, defs) for v in node]
    return node


def root_array(schema: dict[str, Any]) -> str | None:
    """The root's one array property ("facts"), if it has exactly one."""
    arrays = [k for k, v in (schema.get("properties") or {}).items() if _kind(v) == "array"]
    return arrays[0] if len(arrays) == 1 else None


def clean_strings(value: Any) -> Any:
    """Every decoded string without NULs, its lone surrogates (Qwen3's `\\ud83d`) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, list):
        return [clean_strings(v) for v in value]
    if isinstance(value, dict):
        return {clean_strings(k): clean_strings(v) for k, v in value.items()}
    return value


def coerce_root(value: Any, schema: dict[str, Any], notes: list[str]) -> Any:
    """The reply's root value reshaped to the schema's root object, then coerced property by property."""
    props: dict[str, Any] = schema.get("properties") or {}
    key = root_array(schema)
    if isinstance(value, list) and key is not None:
        value = {key: value}
    elif isinstance(value, dict) and value and not props.keys() & value.keys():
        value = _reshape(value, schema, key, notes)
    return coerce(value, schema)


def _reshape(value: dict[str, Any], schema: dict[str, Any], key: str | None, notes: list[str]) -> Any:
    props: dict[str, Any] = schema.get("properties") or {}
    inner = next(iter(value.values())) if len(value) == 1 else None
    if isinstance(inner, dict) and props.keys() & inner.keys():  # {"response": {"facts": [...]}}
        return inner
    lists = [k for k, v in value.items() if isinstance(v, list)]
    if key is not None and len(lists) == 1:  # Mem0's {"memory": [...]}
        notes.append(f'the reply\'s "{lists[0]}" list was read as "{key}"')
        return {key: value[lists[0]]}
    required = schema.get("required") or []
    if len(required) == 1 and _kind(props.get(required[0], {})) == "object":  # the bare instance of {"data": ...}
        return {required[0]: value}
    item = (props.get(key) or {}).get("items") if key is not None else None
    if isinstance(item, dict) and value.keys() & set(item.get("required") or []):  # one item alone
        return {key: [value]}
    return value


def coerce(value: Any, schema: dict[str, Any]) -> Any:
    """`value` made to fit `schema` where that is unambiguous (see the module docstring)."""
    schema = _non_null(schema)
    kind = _kind(schema)
    if kind == "array":
        return _array(value, schema)
    if kind == "object" and isinstance(value, dict) and "properties" in schema:
        return _object(value, schema)
    if isinstance(value, str) and "enum" in schema:
        folded = {str(e).casefold(): e for e in schema["enum"]}
        return folded.get(value.strip().casefold(), value)
    if isinstance(value, str):
        return _scalar(value, kind)
    if kind == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _array(value: Any, schema: dict[str, Any]) -> Any:
    items = _non_null(schema.get("items") or {})
    if value is None:
        return []
    if isinstance(value, str) and _kind(items) in ("integer", "number"):
        value = [p for p in re.split(r"[,;\s]+", value.strip("[] ")) if p]
    elif (isinstance(value, dict) and _kind(items) == "object") or isinstance(value, (str, int, float, bool)):
        value = [value]
    if not isinstance(value, list):
        return value
    if _kind(items) == "object":
        value = [_as_object(v, items) for v in value]
    return [coerce(v, items) for v in value]


def _as_object(value: Any, schema: dict[str, Any]) -> Any:
    """A string where an object item belongs: the object's first required string property holds it."""
    if not isinstance(value, str):
        return value
    props = schema.get("properties") or {}
    first = next((k for k in schema.get("required") or [] if _kind(props.get(k, {})) == "string"), None)
    return {first: value} if first is not None else value


def _object(value: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = schema["properties"]
    required = set(schema.get("required") or [])
    by_case = {k.casefold(): k for k in props}
    out: dict[str, Any] = {}
    for raw_key, v in value.items():
        name = raw_key if raw_key in props else by_case.get(str(raw_key).casefold(), raw_key)
        if name not in props:
            if schema.get("additionalProperties") is not False:
                out[name] = v
            continue
        if name not in required and v in _EMPTY and _kind(_non_null(props[name])) != "array":
            continue  # an optional property left empty: its default applies
        out[name] = coerce(v, props[name])
    return out


def _scalar(value: str, kind: str | None) -> Any:
    if kind == "integer" and _INT.fullmatch(value):
        return int(value)
    if kind == "integer" and _NUMBER.fullmatch(value) and float(value).is_integer():
        return int(float(value))
    if kind == "number" and _NUMBER.fullmatch(value):
        return float(value)
    if kind == "boolean" and value.strip().casefold() in _BOOLS:
        return _BOOLS[value.strip().casefold()]
    return value


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` (anyOf with null) as X; other unions as they are."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        real = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if len(real) == 1:
            return {**{k: v for k, v in schema.items() if k != "anyOf"}, **real[0]}
    return schema


def _kind(schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return None
    kind = _non_null(schema).get("type")
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else None
