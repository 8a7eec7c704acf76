"""Graph memory (memserver extension): an entity's relations over time, and deleting a graph entity.

`GET /v1/graph/entities/{name}/relations/` lists every relation of the entity in the scope, current and
retired, with both time axes (`valid_at`/`invalid_at`: when it held; `created_at`/`expired_at`: when
memserver recorded and retired it) and the memory it came from. `at=<ISO date or unix seconds>` keeps
only the relations that held at that moment ("where did Alice live in 2024?"). `GET /v1/graph/entities/`
lists the scope's entities, busiest first (an entity picker).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from memserver.api.deps import OwnerDep, ReaderDep, RuntimeDep, error_shape, segment
from memserver.api.graph.responses import GraphEntities, GraphTimeline
from memserver.api.kit.entity_query import EntityIdsQuery
from memserver.api.kit.filters import ENTITY_REQUIRED_V1
from memserver.api.kit.values import as_timestamp
from memserver.api.kit.wire import Message, wire
from memserver.errors import BadRequest
from memserver.services import graph

router = APIRouter(tags=["graph (memserver extension)"])


@router.get(
    "/v1/graph/entities/{name}/relations",
    summary="An entity's relations over time (memserver extension)",
    response_model=GraphTimeline,
    responses={400: {"description": "No entity id given"}, 404: {"description": "No such graph entity"}},
)
@error_shape("error")
async def entity_relations(
    name: str,
    runtime: RuntimeDep,
    principal: ReaderDep,
    entity: EntityIdsQuery,
    at: str | None = None,
) -> Response:
    """Every relation of the named entity (name or alias) in the scope the entity ids select."""
    ids = entity.ids()
    if not ids:
        raise BadRequest(ENTITY_REQUIRED_V1)
    return wire(await graph.entity_timeline(runtime.db, principal, segment(name), ids, at=as_timestamp(at)))


@router.get(
    "/v1/graph/entities",
    summary="A scope's graph entities, busiest first (memserver extension)",
    response_model=GraphEntities,
    responses={400: {"description": "No entity id given, or a limit out of range"}},
)
@error_shape("error")
async def scope_entities(
    runtime: RuntimeDep,
    principal: ReaderDep,
    entity: EntityIdsQuery,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Response:
    """The entities of the scope the entity ids select, with their relation counts; `q`: a prefix of the name
    (case and accents aside) or of an alias."""
    ids = entity.ids()
    if not ids:
        raise BadRequest(ENTITY_REQUIRED_V1)
    return wire({"results": await graph.scope_entities(runtime.db, principal, ids, prefix=q, limit=limit)})


@router.delete(
    "/v1/graph/entities/{node_id}",
    summary="Delete a graph entity and its relations (memserver extension)",
    response_model=Message,
    responses={404: {"description": "No such graph entity"}},
)
@error_shape("error")
async def delete_graph_entity(node_id: int, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    await graph.delete_entity_node(runtime.db, principal, node_id)
    return wire({"message": "Graph entity deleted successfully."})
