"""Neo4j graph mirror through the official async driver (optional extra: `pip install memserver[neo4j]`).

Model: `(:Entity {project_id, scope, name, type})-[:RELATES {id, relationship, valid_at, invalid_at,
created_at, expired_at, memory_id, fact}]->(:Entity)`. The relationship name is a property, not a
relationship type: Cypher cannot parameterise types, and building them from model output would mean
string-built Cypher. Every statement is parameterised. `setup()` creates a uniqueness constraint on the
entity key and indexes on the scope and the relation id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from neo4j import AsyncGraphDatabase
from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired

from memserver.domain.relations import RelationRecord
from memserver.domain.scope import Scope
from memserver.providers.errors import ProviderError

SCHEMA = (
    "CREATE CONSTRAINT memserver_entity_key IF NOT EXISTS FOR (e:Entity) REQUIRE e.key IS UNIQUE",
    "CREATE INDEX memserver_entity_scope IF NOT EXISTS FOR (e:Entity) ON (e.project_id, e.scope)",
    "CREATE INDEX memserver_relates_id IF NOT EXISTS FOR ()-[r:RELATES]-() ON (r.id)",
    "CREATE INDEX memserver_relates_scope IF NOT EXISTS FOR ()-[r:RELATES]-() ON (r.project_id, r.scope)",
)

_DELETE_SCOPE = """
MATCH (e:Entity {project_id: $project_id, scope: $scope}) DETACH DELETE e
"""

_WRITE = """
UNWIND $rows AS row
MERGE (s:Entity {key: row.source_key})
  ON CREATE SET s.project_id = $project_id, s.scope = $scope, s.name = row.source, s.type = row.source_type
MERGE (t:Entity {key: row.target_key})
  ON CREATE SET t.project_id = $project_id, t.scope = $scope, t.name = row.target, t.type = row.target_type
CREATE (s)-[r:RELATES {id: row.id, project_id: $project_id, scope: $scope, relationship: row.relationship,
                       fact: row.fact, memory_id: row.memory_id, valid_at: row.valid_at,
                       invalid_at: row.invalid_at, created_at: row.created_at, expired_at: row.expired_at}]->(t)
"""

_READ = """
MATCH (s:Entity)-[r:RELATES {project_id: $project_id, scope: $scope}]->(t:Entity)
RETURN r.id AS id, s.name AS source, r.relationship AS relationship, t.name AS target,
       r.valid_at AS valid_at, r.invalid_at AS invalid_at, r.expired_at AS expired_at
ORDER BY r.created_at
"""


def scope_key(scope: Scope) -> str:
    """One string per exact scope (a property Neo4j can index and compare)."""
    return json.dumps(scope.as_dict(), sort_keys=True)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _rows(project_id: uuid.UUID, scope: Scope, relations: Sequence[RelationRecord]) -> list[dict[str, Any]]:
    prefix = f"{project_id}|{scope_key(scope)}|"
    return [
        {
            "id": str(r.id),
            "source": r.triple.source,
            "source_type": r.triple.source_type,
            "source_key": prefix + r.triple.source.casefold(),
            "relationship": r.triple.relationship,
            "target": r.triple.target,
            "target_type": r.triple.target_type,
            "target_key": prefix + r.triple.target.casefold(),
            "fact": r.fact,
            "memory_id": str(r.memory_id) if r.memory_id else None,
            "valid_at": _iso(r.valid_at),
            "invalid_at": _iso(r.invalid_at),
            "created_at": _iso(r.created_at),
            "expired_at": _iso(r.expired_at),
        }
        for r in relations
    ]


class Neo4jUnavailable(ProviderError):
    status_code = 503
    code = "graph_store_unavailable"

    def __init__(self, message: str):
        super().__init__(message, public=True)  # our own words, never the driver's


class Neo4jGraphMirror:
    name = "neo4j"

    def __init__(
        self,
        url: str,
        user: str | None,
        password: str | None,
        database: str | None = None,
        *,
        timeout_s: float = 5.0,
        schema: Sequence[str] = SCHEMA,
    ):
        """`schema`: the statements `setup()` runs (Neo4j's DDL; another Bolt server's dialect in tests)."""
        auth = (user, password) if user and password is not None else None
        # Bounded: an unreachable Neo4j fails a GRAPH_SYNC job within seconds (the driver would retry 30 s).
        self._driver = AsyncGraphDatabase.driver(
            url, auth=auth, connection_timeout=timeout_s, max_transaction_retry_time=timeout_s
        )
        self._database = database
        self._schema = tuple(schema)
        self._ready = False

    async def _run(self, query: str, **params: Any) -> list[dict[str, Any]]:
        try:
            result = await self._driver.execute_query(query, params, database_=self._database)
        except (ServiceUnavailable, SessionExpired, OSError) as exc:
            raise Neo4jUnavailable("Neo4j is unreachable") from exc
        except Neo4jError as exc:
            raise Neo4jUnavailable(f"Neo4j refused a statement ({exc.code})") from exc
        return [dict(r) for r in result.records]

    async def setup(self) -> None:
        for statement in self._schema:
            await self._run(statement)
        self._ready = True

    async def replace_scope(self, project_id: uuid.UUID, scope: Scope, relations: Sequence[RelationRecord]) -> None:
        """Delete the scope's copy and write it again, in one transaction (a failure leaves the old copy)."""
        if not self._ready:
            await self.setup()
        params = {"project_id": str(project_id), "scope": scope_key(scope), "rows": _rows(project_id, scope, relations)}

        async def work(tx: Any) -> None:
            await tx.run(_DELETE_SCOPE, params)
            if params["rows"]:
                await tx.run(_WRITE, params)

        try:
            async with self._driver.session(database=self._database) as session:
                await session.execute_write(work)
        except (ServiceUnavailable, SessionExpired, OSError) as exc:
            raise Neo4jUnavailable("Neo4j is unreachable") from exc
        except Neo4jError as exc:  # the driver's text names the server and the statement: the log only
            raise Neo4jUnavailable(f"Neo4j refused a statement ({exc.code})") from exc

    async def scope_relations(self, project_id: uuid.UUID, scope: Scope) -> list[dict[str, object]]:
        return await self._run(_READ, project_id=str(project_id), scope=scope_key(scope))

    async def aclose(self) -> None:
        await self._driver.close()
