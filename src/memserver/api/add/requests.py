"""The add request of every client generation, and its parsing into the use case's `AddInput`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import Request
from pydantic import Field, ValidationError, field_validator

from memserver.api.kit.schema import EntityIds, check_metadata, check_text_length
from memserver.domain import limits
from memserver.domain.add import IGNORED_PARAMETERS, AddInput, parse_custom_categories, parse_messages
from memserver.domain.dates import observation, parse_timestamp, parse_zone, to_date
from memserver.domain.filters import FilterError, entity_equalities, parse_filters
from memserver.errors import BadRequest


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
    timezone: str | None = Field(
        None,
        description='The IANA time zone of the conversation ("Europe/Paris"): the days its relative dates '
        '("yesterday") mean, and of a naive observation_datetime. Absent: UTC.',
    )
    categories: list[str] | None = Field(None, description="Categories for verbatim memories.")
    async_mode: bool = Field(True, description="v1 only: the queued-event response shape.")
    output_format: str | None = Field(None, description="v1 only: 'v1.1' wraps results in {results, relations}.")
    custom_categories: Any = None
    custom_instructions: str | None = None
    agent_custom_instructions: str | None = None
    includes: str | None = None
    excludes: str | None = None
    enable_graph: bool | None = None
    observation_date: date | None = Field(None, description="The day the messages were said (relative dates).")
    observation_datetime: datetime | None = Field(
        None, description="When the messages were said: relative dates resolve against it; created_at is not moved."
    )
    prompt_profile_id: Any = Field(None, description="Accepted without effect (noted on the event).")
    temporal_reasoning: Any = Field(None, description="Accepted without effect: always on (noted on the event).")
    structured_data_schema: Any = Field(None, description="Accepted without effect (noted on the event).")
    force_add_only: Any = Field(None, description="Accepted without effect (noted on the event).")

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


def add_input(body: AddRequest) -> AddInput:
    """Validate and normalise an add; the first problem found is a 400 in the add shape (the route declares it).

    Each step calls down into `domain/` only; a ValueError carries the text the client sees."""
    try:
        ids = _entity_ids(body)
        messages = parse_messages(body.messages)
        expiration_date = to_date(body.expiration_date) if body.expiration_date is not None else None
        timestamp = parse_timestamp(body.timestamp) if body.timestamp is not None else None
        zone = (body.timezone or "").strip() or None
        parse_zone(zone)
        custom_categories = parse_custom_categories(body.custom_categories)
        observed_at = observation(body.observation_date, body.observation_datetime, zone)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    ignored = sorted(k for k in IGNORED_PARAMETERS if getattr(body, k) is not None)
    return AddInput(
        messages=messages,
        **ids,
        metadata=body.metadata,
        categories=body.categories,
        immutable=body.immutable,
        expiration_date=expiration_date,
        timestamp=timestamp,
        timezone=zone,
        infer=body.infer,
        includes=body.includes,
        excludes=body.excludes,
        custom_instructions=body.custom_instructions,
        agent_custom_instructions=body.agent_custom_instructions,
        custom_categories=custom_categories,
        enable_graph=body.enable_graph,
        observed_at=observed_at,
        ignored=ignored or None,
    )


def _entity_ids(body: AddRequest) -> dict[str, str]:
    """The ids given flat inside `filters` (how the Python SDK sends them on add), then the top-level ones,
    which win."""
    try:
        ids = entity_equalities(parse_filters(body.filters)) if body.filters else {}
    except FilterError as exc:
        raise ValueError(f"filters: {exc}") from None
    ids.update(body.ids())
    if not ids:
        raise ValueError("at least one of user_id, agent_id, app_id, run_id is required")
    if "*" in ids.values():
        raise ValueError("'*' is a filter wildcard, not an entity id")
    return ids


async def pre_release_add(request: Request) -> AddInput:
    """A pre-release client's add (2.0.0b1, ts-v3.0.0-beta.1 sent them to the v3 list route), parsed from the
    raw body: the list route's own model drops the add's fields (infer, metadata, timestamp...)."""
    try:
        body = AddRequest.model_validate(await request.json())
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        raise BadRequest(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))) from None
    return add_input(body)
