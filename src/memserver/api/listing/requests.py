"""The list request (v2 and v3 POST), and its filter."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from memserver.api.kit.filters import (
    ENTITY_REQUIRED_V1,
    TOP_LEVEL_IDS_V3,
    entity_node,
    filters_node,
    require_scope,
    shortcut_nodes,
)
from memserver.api.kit.schema import EntityIds
from memserver.api.kit.values import AS_OF_DESCRIPTION, AS_OF_SCHEMA
from memserver.domain import binding
from memserver.domain.filters import Node, and_all
from memserver.domain.principal import Principal
from memserver.errors import BadRequest


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
    as_of: Annotated[Any, WithJsonSchema(AS_OF_SCHEMA)] = Field(None, description=AS_OF_DESCRIPTION)


def list_node(body: ListRequest, principal: Principal, *, allow_top_level_ids: bool) -> Node:
    ids = body.ids()
    if ids and not allow_top_level_ids:
        raise BadRequest(TOP_LEVEL_IDS_V3)
    node = and_all(filters_node(body.filters), entity_node(ids))
    node = require_scope(node, ENTITY_REQUIRED_V1)
    extra = shortcut_nodes(
        categories=body.categories,
        keywords=body.keywords,
        start_date=body.start_date,
        end_date=body.end_date,
        latest_only=body.latest_only,
    )
    result = binding.confine_filter(principal.binding, and_all(node, extra))
    assert result is not None
    return result
