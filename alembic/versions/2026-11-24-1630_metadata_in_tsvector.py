"""Metadata words become searchable keyword evidence, weighted apart from the memory's text.

The memory's tsvector now holds its text's lexemes with weight A and the words of its metadata's
string values with weight D, so search can tell a match in the text from a match in, say,
{"topic": "hiking"} (hybrid ranking counts the latter at half weight). Metadata is parsed with
`memserver_meta`, a copy of the english configuration that drops numbers, ids, URLs, hosts, paths
and e-mail addresses: {"dia_id": "D1:3"} or {"ticket": 4512} must not make a memory match "3" or
"4512".

The column is dropped and added again (Postgres 16 has no ALTER COLUMN ... SET EXPRESSION), which
rewrites the table and rebuilds its full-text index.

Revision ID: 0004_metadata_in_tsvector
Revises: 0003_memories_inline_rows
Create Date: 2026-11-24 16:30
"""

from __future__ import annotations

from alembic import op

revision = "0004_metadata_in_tsvector"
down_revision = "0003_memories_inline_rows"
branch_labels = None
depends_on = None

_DROPPED_TOKENS = (
    "int, uint, float, sfloat, version, numword, numhword, hword_numpart, "
    "url, url_path, host, file, email, protocol, tag, entity"
)


def upgrade() -> None:
    op.execute("CREATE TEXT SEARCH CONFIGURATION memserver_meta (COPY = pg_catalog.english)")
    op.execute(f"ALTER TEXT SEARCH CONFIGURATION memserver_meta DROP MAPPING IF EXISTS FOR {_DROPPED_TOKENS}")
    op.execute("ALTER TABLE memories DROP COLUMN tsv")
    op.execute(
        """
        ALTER TABLE memories ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english'::regconfig, memory), 'A')
            || setweight(jsonb_to_tsvector('memserver_meta'::regconfig, coalesce(metadata, '{}'::jsonb), '["string"]'), 'D')
        ) STORED
        """
    )
    op.execute("CREATE INDEX ix_memories_tsv ON memories USING gin (tsv)")


def downgrade() -> None:
    op.execute("ALTER TABLE memories DROP COLUMN tsv")
    op.execute(
        "ALTER TABLE memories ADD COLUMN tsv tsvector "
        "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, memory)) STORED"
    )
    op.execute("CREATE INDEX ix_memories_tsv ON memories USING gin (tsv)")
    op.execute("DROP TEXT SEARCH CONFIGURATION memserver_meta")
