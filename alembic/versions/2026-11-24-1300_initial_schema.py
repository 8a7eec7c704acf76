"""Initial schema: tenants, keys, memories (pgvector), history, entities, events.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-24 13:00
"""

from __future__ import annotations

from alembic import context, op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _dim() -> int:
    # The dimension is fixed when the schema is created (from the configured embedder) and
    # checked at every startup; changing embedders of another size needs a new database.
    return int(context.get_x_argument(as_dictionary=True).get("embedding_dim", 384))


def _execute_all(sql: str) -> None:
    """asyncpg runs one statement per call; this script has no semicolons inside statements."""
    for statement in sql.split(";"):
        if statement.strip() and not all(
            line.strip().startswith("--") or not line.strip() for line in statement.splitlines()
        ):
            op.execute(statement)


def upgrade() -> None:
    dim = _dim()
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    _execute_all(
        """
        CREATE TABLE orgs (
            id uuid PRIMARY KEY,
            name text NOT NULL CONSTRAINT uq_orgs_name UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE projects (
            id uuid PRIMARY KEY,
            org_id uuid NOT NULL CONSTRAINT fk_projects_org_id_orgs REFERENCES orgs(id) ON DELETE CASCADE,
            name text NOT NULL,
            description text,
            custom_instructions text,
            custom_categories jsonb,
            settings jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_projects_org_id_name UNIQUE (org_id, name)
        );
        CREATE TABLE api_keys (
            id uuid PRIMARY KEY,
            project_id uuid NOT NULL CONSTRAINT fk_api_keys_project_id_projects
                REFERENCES projects(id) ON DELETE CASCADE,
            name text NOT NULL,
            key_prefix text NOT NULL,
            key_hash bytea NOT NULL CONSTRAINT uq_api_keys_key_hash UNIQUE,
            owner_email text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz,
            revoked_at timestamptz
        );
        CREATE INDEX ix_api_keys_project_id ON api_keys (project_id);
        """
    )
    _execute_all(
        f"""
        CREATE TABLE memories (
            id uuid PRIMARY KEY,
            project_id uuid NOT NULL CONSTRAINT fk_memories_project_id_projects
                REFERENCES projects(id) ON DELETE CASCADE,
            user_id text,
            agent_id text,
            app_id text,
            run_id text,
            memory text NOT NULL,
            hash text NOT NULL,
            metadata jsonb,
            categories text[],
            embedding vector({dim}) NOT NULL,
            immutable boolean NOT NULL DEFAULT false,
            expiration_date date,
            role text,
            actor_id text,
            source text NOT NULL DEFAULT 'verbatim',
            provenance jsonb,
            replaced_by uuid,
            event_id uuid,
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, memory)) STORED,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        -- Scoped listing and exact search: every query filters on the project and usually one entity.
        CREATE INDEX ix_memories_project_user ON memories (project_id, user_id, created_at DESC, id);
        CREATE INDEX ix_memories_project_agent ON memories (project_id, agent_id, created_at DESC, id)
            WHERE agent_id IS NOT NULL;
        CREATE INDEX ix_memories_project_app ON memories (project_id, app_id, created_at DESC, id)
            WHERE app_id IS NOT NULL;
        CREATE INDEX ix_memories_project_run ON memories (project_id, run_id, created_at DESC, id)
            WHERE run_id IS NOT NULL;
        CREATE INDEX ix_memories_project_created ON memories (project_id, created_at DESC, id);
        -- Exact-duplicate protection for verbatim imports (one statement, ON CONFLICT DO NOTHING).
        CREATE UNIQUE INDEX uq_memories_scope_hash ON memories
            (project_id, user_id, agent_id, app_id, run_id, hash) NULLS NOT DISTINCT;
        CREATE INDEX ix_memories_metadata ON memories USING gin (metadata jsonb_path_ops);
        CREATE INDEX ix_memories_tsv ON memories USING gin (tsv);
        CREATE INDEX ix_memories_replaced_by ON memories (replaced_by) WHERE replaced_by IS NOT NULL;
        -- Written by hand: autogenerate mangles HNSW opclasses.
        CREATE INDEX ix_memories_embedding_hnsw ON memories
            USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

        CREATE TABLE memory_history (
            id uuid PRIMARY KEY,
            project_id uuid NOT NULL CONSTRAINT fk_memory_history_project_id_projects
                REFERENCES projects(id) ON DELETE CASCADE,
            memory_id uuid NOT NULL,
            event text NOT NULL,
            old_memory text,
            new_memory text,
            input jsonb,
            user_id text,
            agent_id text,
            app_id text,
            run_id text,
            categories text[],
            metadata jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX ix_memory_history_memory ON memory_history (project_id, memory_id, created_at);
        CREATE INDEX ix_memory_history_created ON memory_history (project_id, created_at DESC, id);

        CREATE TABLE entities (
            id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            project_id uuid NOT NULL CONSTRAINT fk_entities_project_id_projects
                REFERENCES projects(id) ON DELETE CASCADE,
            type text NOT NULL,
            name text NOT NULL,
            metadata jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_entities_project_id_type_name UNIQUE (project_id, type, name)
        );

        CREATE TABLE events (
            id uuid PRIMARY KEY,
            project_id uuid NOT NULL CONSTRAINT fk_events_project_id_projects
                REFERENCES projects(id) ON DELETE CASCADE,
            event_type text NOT NULL,
            status text NOT NULL,
            payload jsonb,
            results jsonb,
            error text,
            metadata jsonb,
            attempts integer NOT NULL DEFAULT 0,
            latency_ms double precision,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            completed_at timestamptz
        );
        CREATE INDEX ix_events_project_created ON events (project_id, created_at DESC, id);
        CREATE INDEX ix_events_open ON events (created_at) WHERE status IN ('PENDING', 'RUNNING');
        """
    )


def downgrade() -> None:
    _execute_all(
        """
        DROP TABLE IF EXISTS events;
        DROP TABLE IF EXISTS entities;
        DROP TABLE IF EXISTS memory_history;
        DROP TABLE IF EXISTS memories;
        DROP TABLE IF EXISTS api_keys;
        DROP TABLE IF EXISTS projects;
        DROP TABLE IF EXISTS orgs;
        """
    )
