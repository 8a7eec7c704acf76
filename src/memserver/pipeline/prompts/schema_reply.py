"""A reply shaped by the caller's JSON schema: {"data": <an instance of the schema>} (exports, profiles)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ValidationInfo, model_validator

from memserver.domain.json_schema import problems


class SchemaReply(BaseModel):
    """{"data": <instance of the caller's schema>}; the schema comes in the validation context."""

    data: dict[str, Any]
    target_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    @model_validator(mode="after")
    def _fits_schema(self, info: ValidationInfo) -> SchemaReply:
        schema = (info.context or {}).get("schema") or self.target_schema
        found = problems(self.data, schema, "$.data")
        if found:
            raise ValueError("the data does not match the schema: " + "; ".join(found))
        return self

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """What structured-output servers are asked for: the caller's schema under `data`."""
        return {
            "title": cls.__name__,
            "type": "object",
            "properties": {"data": cls.target_schema},
            "required": ["data"],
        }


def schema_reply(schema: dict[str, Any]) -> type[SchemaReply]:
    """A reply model asking for an instance of `schema`."""
    return type("SchemaReply", (SchemaReply,), {"target_schema": schema})


def context(schema: dict[str, Any]) -> dict[str, Any]:
    """The validation context that checks the data against the caller's schema."""
    return {"schema": schema}
