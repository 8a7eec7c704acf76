"""A webhook's fields, checked as Mem0's API checks them."""

from __future__ import annotations

from typing import Any

from memserver.errors import BadRequest


def webhook_fields(body: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """name/url/event_types checked like Mem0's API: field-keyed 400s ({"name": ["This field is required."]})."""
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for key in ("name", "url"):
        value = body.get(key)
        if value is None:
            if required:
                errors[key] = ["This field is required."]
        elif not isinstance(value, str) or not value.strip():
            errors[key] = ["Not a valid string."]
        else:
            out[key] = value.strip()
    types = body.get("event_types")
    if types is None:
        if required:
            errors["event_types"] = ["This field is required."]
    elif not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        errors["event_types"] = ["Expected a list of items."]
    else:
        out["event_types"] = types
    if errors:
        raise BadRequest("; ".join(f"{k}: {v[0]}" for k, v in errors.items()), extra=errors)
    return out
