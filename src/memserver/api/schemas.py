"""Request bodies of the Mem0 routes. Unknown fields are ignored (clients send many extras)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field, field_validator

from memserver.api.kit.schema import EntityIds, Schema, check_metadata, check_text_length
from memserver.domain import limits


class AddRequest(EntityIds):
    """POST /v3/memories/add/ and POST /v1/memories/."""

    messages: list[Any] | dict[str, Any] | str = Field(
        ..., description="Messages [{role, content}], one message, or a string."
    )
    filters: dict[str, Any] | None = Field(None, description="Entity ids may also be given here (flat).")
    metadata: dict[str, Any] | None = None
    infer: bool = Field(True, description="false = store each non-system message verbatim, synchronously.")
    immutable: bool = False
    expiration_date: date | datetime | None = None
    timestamp: int | float | str | None = Field(None, description="Unix seconds (or ISO): backdates created_at.")
    categories: list[str] | None = Field(None, description="Categories for verbatim memories.")
    async_mode: bool = Field(True, description="v1 only: the queued-event response shape.")
    output_format: str | None = Field(None, description="v1 only: 'v1.1' wraps results in {results, relations}.")
    custom_categories: Any = None
    custom_instructions: str | None = None
    agent_custom_instructions: str | None = None
    includes: str | None = None
    excludes: str | None = None
    enable_graph: bool | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _no_bool_timestamp(cls, v: Any) -> Any:
        if isinstance(v, bool):  # pydantic would read true as 1 (1970-01-01)
            raise ValueError("timestamp must be unix seconds or an ISO-8601 string, not a boolean")
        return v

    @field_validator("messages", mode="after")
    @classmethod
    def _bounded_messages(cls, v: Any) -> Any:
        n = limits.current().max_messages
        if isinstance(v, list) and len(v) > n:
            raise ValueError(f"at most {n} messages per add (MEMSERVER_LIMITS__MAX_MESSAGES)")
        return v

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)

    @field_validator("custom_instructions", "agent_custom_instructions", "includes", "excludes", mode="after")
    @classmethod
    def _bounded_text(cls, v: str | None) -> str | None:
        return check_text_length(v)

    @field_validator("categories", mode="after")
    @classmethod
    def _bounded_categories(cls, v: list[str] | None) -> list[str] | None:
        limits.check_list("categories", v)
        return v


class ListRequest(EntityIds):
    """POST /v2/memories/ and POST /v3/memories/ (list)."""

    filters: dict[str, Any] | None = None
    fields: list[str] | None = None
    page: int | None = None
    page_size: int | None = None
    show_expired: bool = False
    start_date: str | None = None
    end_date: str | None = None
    categories: list[str] | str | None = None
    keywords: str | None = None
    latest_only: bool = False
    include_merged: bool = Field(
        False, description="Accepted; memserver never merges records (duplicates are NOOP at add time)."
    )
    messages: Any = None  # pre-release clients sent adds here
    enable_graph: bool = Field(False, description="v2: also return the scope's current `relations` (graph memory).")


class SearchRequest(EntityIds):
    """POST /v1|v2|v3/memories/search/."""

    query: str = Field(..., description="The search text.")
    filters: dict[str, Any] | None = None
    top_k: int | None = Field(None, description="Results to return (1-1000; default 10).")
    limit: int | None = Field(None, description="Alias of top_k.")
    threshold: float | None = Field(None, description="Minimum score 0..1 (v3 default 0.1, v2 0.3, v1 none).")
    rerank: bool = False
    keyword_search: bool = False
    show_expired: bool = False
    fields: list[str] | None = None
    categories: list[str] | None = None
    metadata: dict[str, Any] | None = None
    output_format: str | None = None
    latest_only: bool = False
    include_merged: bool = Field(
        False, description="Accepted; memserver never merges records (duplicates are NOOP at add time)."
    )
    retrieval: str | None = Field(
        None, description="memserver extension: 'hybrid' (default), 'semantic' (dense only) or 'keyword'."
    )
    enable_graph: bool = Field(
        False, description="v1/v2: also return `relations` of the entities the query names (ignored on v3)."
    )

    @field_validator("query", mode="after")
    @classmethod
    def _bounded_query(cls, v: str) -> str:
        n = limits.current().max_query_chars
        if len(v) > n:
            raise ValueError(f"query is longer than {n} characters (MEMSERVER_LIMITS__MAX_QUERY_CHARS)")
        return v

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)


class UpdateRequest(Schema):
    """PUT /v1/memories/{memory_id}/. `expiration_date: null` clears the expiry."""

    text: str | None = None
    data: str | None = Field(None, description="Legacy alias of text.")
    message: str | None = Field(None, description="Legacy alias of text.")
    metadata: dict[str, Any] | None = None
    expiration_date: date | datetime | None = None
    timestamp: int | float | str | None = None

    @field_validator("text", "data", "message", mode="after")
    @classmethod
    def _bounded_text(cls, v: str | None) -> str | None:
        return check_text_length(v)

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)


class BatchItem(Schema):
    memory_id: Any
    text: str | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("text", mode="after")
    @classmethod
    def _bounded_text(cls, v: str | None) -> str | None:
        return check_text_length(v)

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)


class BatchRequest(Schema):
    memories: list[Any] | None = None
    memory_ids: list[Any] | None = Field(None, description="Legacy form of batch delete.")


class EntityCreate(Schema):
    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("user_id", "agent_id", "app_id", "run_id", "name", mode="after")
    @classmethod
    def _bounded_id(cls, v: str | None) -> str | None:
        if v is not None:
            limits.check_entity_id("entity id", v)
        return v

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)
