"""Graph memory: entities (nodes) and bi-temporal typed relations (edges), next to the memories.

Nodes are resolved per exact scope (the memory scope columns). A relation records when it was true
(`valid_at`, `invalid_at`: taken from the conversation) and when memserver recorded and retired it
(`created_at`, `expired_at`), the memory and add (event) it came from, and which relation replaced it.
Contradicted relations are retired (expired_at set), never deleted; deleting the memory a relation
came from deletes the relation (ON DELETE CASCADE), so graph and memories never disagree.

Revision ID: 0009_graph
"""

from __future__ import annotations

from alembic import op

revision = "0009_graph"
down_revision = "0008_platform"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The vector dimension of the nodes follows the memories' (fixed when the schema was created).
    dim = op.get_bind().exec_driver_sql(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memories'::regclass AND attname = 'embedding'"
    ).scalar_one()
    op.execute(
        f"""
        CREATE TABLE graph_nodes (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            user_id text, agent_id text, app_id text, run_id text,
            name text NOT NULL,
            key text NOT NULL,
            type text NOT NULL DEFAULT 'entity',
            aliases text[] NOT NULL DEFAULT '{{}}',
            embedding vector({dim}),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # One node per normalised name in a scope; resolution also reads aliases (GIN) and embeddings.
    op.execute(
        "CREATE UNIQUE INDEX uq_graph_nodes_scope_key ON graph_nodes "
        "(project_id, user_id, agent_id, app_id, run_id, key) NULLS NOT DISTINCT"
    )
    # fastupdate off: lookups stay fast right after bulk writes (no pending list to scan); writes are few.
    op.execute("CREATE INDEX ix_graph_nodes_aliases ON graph_nodes USING gin (aliases) WITH (fastupdate = off)")
    op.execute("CREATE INDEX ix_graph_nodes_project_user ON graph_nodes (project_id, user_id, agent_id)")
    # Search names entities by the words of the query (key) or by meaning (HNSW, iterative scans filter).
    op.execute("CREATE INDEX ix_graph_nodes_project_key ON graph_nodes (project_id, key)")
    op.execute(
        "CREATE INDEX ix_graph_nodes_embedding ON graph_nodes "
        "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    op.execute(
        """
        CREATE TABLE graph_relations (
            id uuid PRIMARY KEY,
            project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            user_id text, agent_id text, app_id text, run_id text,
            source_id bigint NOT NULL REFERENCES graph_nodes(id) ON DELETE CASCADE,
            relationship text NOT NULL,
            target_id bigint NOT NULL REFERENCES graph_nodes(id) ON DELETE CASCADE,
            fact text,
            memory_id uuid REFERENCES memories(id) ON DELETE CASCADE,
            event_id uuid,
            valid_at timestamptz,
            invalid_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            expired_at timestamptz,
            invalidated_by uuid
        )
        """
    )
    op.execute("CREATE INDEX ix_graph_relations_source ON graph_relations (source_id, relationship)")
    op.execute("CREATE INDEX ix_graph_relations_target ON graph_relations (target_id)")
    op.execute("CREATE INDEX ix_graph_relations_memory ON graph_relations (memory_id)")
    op.execute("CREATE INDEX ix_graph_relations_scope ON graph_relations (project_id, user_id, agent_id, created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE graph_relations")
    op.execute("DROP TABLE graph_nodes")
