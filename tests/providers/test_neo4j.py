"""The Neo4j graph mirror against a real Neo4j: runs whenever MEMSERVER_NEO4J_URL is set (with
MEMSERVER_NEO4J_USER / MEMSERVER_NEO4J_PASSWORD), and is skipped with that reason otherwise. No Neo4j
server can run on the development machines, so these tests run wherever one is reachable (CI with a
neo4j service, or `docker compose --profile graph up neo4j` on a workstation).

What runs everywhere instead: the mirror's outage path (tests/api/test_graph.py: an unreachable Neo4j
fails only the GRAPH_SYNC job, never the add) and the statements' shape (below).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from memserver.domain.graph import RelationRecord, Triple
from memserver.domain.scope import Scope
from memserver.providers.graph import neo4j as adapter

NEO4J_URL = os.environ.get("MEMSERVER_NEO4J_URL")
needs_neo4j = pytest.mark.skipif(
    not NEO4J_URL, reason="MEMSERVER_NEO4J_URL is not set: no Neo4j server to test the graph mirror against"
)


def test_every_statement_is_parameterised() -> None:
    """Values reach Cypher only as $parameters (or fields of the $rows parameter): nothing is built from data."""
    for statement in (adapter._WRITE, adapter._READ, adapter._DELETE_SCOPE):
        for props in re.findall(r"\{([^{}]*)\}", statement):
            for value in re.findall(r"\w+:\s*([^,]+)", props):
                assert value.strip().startswith(("$", "row.")), (statement, value)
    assert all(s.startswith("CREATE ") and "IF NOT EXISTS" in s for s in adapter.SCHEMA)


def record(source: str, relationship: str, target: str, *, expired: bool = False) -> RelationRecord:
    now = datetime.now(UTC)
    return RelationRecord(
        id=uuid.uuid4(),
        triple=Triple(source, "person", relationship, target, "place"),
        fact=f"{source} {relationship} {target}",
        memory_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        valid_at=datetime(2020, 1, 1, tzinfo=UTC),
        invalid_at=now if expired else None,
        created_at=now,
        expired_at=now if expired else None,
        invalidated_by=None,
        scope=Scope(user_id="alice"),
    )


@pytest.fixture
async def mirror() -> AsyncIterator[adapter.Neo4jGraphMirror]:
    assert NEO4J_URL is not None
    m = adapter.Neo4jGraphMirror(
        NEO4J_URL, os.environ.get("MEMSERVER_NEO4J_USER", "neo4j"), os.environ.get("MEMSERVER_NEO4J_PASSWORD")
    )
    try:
        await m.setup()
        yield m
    finally:
        await m.aclose()


@needs_neo4j
async def test_a_scope_is_mirrored_whole_and_replaced_idempotently(mirror: adapter.Neo4jGraphMirror) -> None:
    project, scope = uuid.uuid4(), Scope(user_id="alice")
    lisbon, berlin = record("alice", "lives_in", "Lisbon", expired=True), record("alice", "lives_in", "Berlin")
    await mirror.replace_scope(project, scope, [lisbon, berlin])
    await mirror.replace_scope(project, scope, [lisbon, berlin])  # a redelivered job changes nothing
    rows = await mirror.scope_relations(project, scope)
    assert {(r["source"], r["relationship"], r["target"]) for r in rows} == {
        ("alice", "lives_in", "Lisbon"),
        ("alice", "lives_in", "Berlin"),
    }
    assert {r["target"]: r["expired_at"] is not None for r in rows} == {"Lisbon": True, "Berlin": False}
    # memories deleted in Postgres: the next sync of the scope drops their relations
    await mirror.replace_scope(project, scope, [berlin])
    assert [r["target"] for r in await mirror.scope_relations(project, scope)] == ["Berlin"]
    # another project's scope of the same name is another graph
    assert await mirror.scope_relations(uuid.uuid4(), scope) == []
    await mirror.replace_scope(project, scope, [])
    assert await mirror.scope_relations(project, scope) == []
