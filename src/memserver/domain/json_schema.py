"""A small JSON Schema checker for the schemas users give exports and profiles.

It checks what those schemas use: `type` (one or a list), `properties`, `required`, `items`, `enum`,
`additionalProperties: false`, and `anyOf`/`oneOf` (any branch passes). Other keywords are accepted and
ignored. `problems()` returns readable messages (empty = valid); the LLM is asked to repair from them.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


class SchemaError(ValueError):
    """The schema itself is unusable."""


def _is(value: Any, type_name: str) -> bool:
    if type_name in ("integer", "number") and isinstance(value, bool):
        return False
    if type_name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(type_name, (object,)))


def problems(value: Any, schema: Any, path: str = "$") -> list[str]:
    """What is wrong with `value` under `schema` (at most a few dozen messages)."""
    if not isinstance(schema, dict):
        return []
    out: list[str] = []
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches and all(problems(value, b, path) for b in branches):
            out.append(f"{path}: matches none of the {key} alternatives")
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is(value, str(t)) for t in names):
            return [*out, f"{path}: expected {' or '.join(map(str, names))}, got {type(value).__name__}"]
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        out.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        props = found if isinstance(found := schema.get("properties"), dict) else {}
        for name in schema.get("required") or []:
            if name not in value:
                out.append(f"{path}: missing required property {name!r}")
        for name, item in value.items():
            if name in props:
                out += problems(item, props[name], f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected property {name!r}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += problems(item, schema["items"], f"{path}[{i}]")
    return out[:40]


def check_schema(schema: Any, *, descriptions: bool = False) -> dict[str, Any]:
    """The schema as an object (SchemaError otherwise); descriptions=True: every property needs one."""
    if not isinstance(schema, dict):
        raise SchemaError("the schema must be a JSON object")
    if schema.get("type", "object") != "object":
        raise SchemaError("the schema must describe an object (type: object)")
    props = schema.get("properties")
    if props is not None and not isinstance(props, dict):
        raise SchemaError("properties must be an object")
    if descriptions:
        missing = sorted(n for n, p in (props or {}).items() if not (isinstance(p, dict) and p.get("description")))
        if missing:
            raise SchemaError(f"every property needs a description; missing for: {', '.join(missing)}")
    return schema


def prune(value: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Only the properties the schema names (a profile drops fields removed from its schema)."""
    props = schema.get("properties")
    if not isinstance(props, dict) or schema.get("additionalProperties") is True:
        return value
    return {k: v for k, v in value.items() if k in props}
