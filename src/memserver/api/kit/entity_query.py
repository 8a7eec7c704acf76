"""The entity ids a route takes as query parameters (`?user_id=...`), declared once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from memserver.domain import limits
from memserver.errors import BadRequest


@dataclass(frozen=True)
class EntityQuery:
    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None

    def ids(self) -> dict[str, str]:
        """The ids given (empty ones count as absent), each checked against MEMSERVER_LIMITS__MAX_ENTITY_ID_CHARS.

        Checked by the route, not by the dependency: a dependency that raises would answer before FastAPI's
        validation of the route's other parameters, and change which of two errors a client sees."""
        given = {"user_id": self.user_id, "agent_id": self.agent_id, "app_id": self.app_id, "run_id": self.run_id}
        out = {k: v for k, v in given.items() if v}
        for k, v in out.items():
            try:
                limits.check_entity_id(k, v)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        return out


async def _entity_query(
    user_id: str | None = None, agent_id: str | None = None, app_id: str | None = None, run_id: str | None = None
) -> EntityQuery:
    return EntityQuery(user_id, agent_id, app_id, run_id)


EntityIdsQuery = Annotated[EntityQuery, Depends(_entity_query)]
