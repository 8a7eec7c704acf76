"""Graph-aware search walks the current relations of an entity, newest first, a bounded number at a time.

The walk (`GraphReads.memory_scores`) reads at most `fanout` relations per entity and side, newest first,
of those not retired. Without these indexes, an entity with thousands of relations (a speaker named in
every message) would be read whole and sorted for each step of the walk; with them, each step reads
`fanout` index entries. Partial on `expired_at IS NULL`: retired relations never take part in a walk.

Revision ID: 0011_graph_search
"""

from __future__ import annotations

from alembic import op

revision = "0011_graph_search"
down_revision = "0010_api_key_defaults"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_graph_relations_source_current ON graph_relations (source_id, created_at DESC) "
        "WHERE expired_at IS NULL"
    )
    op.execute(
        "CREATE INDEX ix_graph_relations_target_current ON graph_relations (target_id, created_at DESC) "
        "WHERE expired_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_graph_relations_target_current")
    op.execute("DROP INDEX ix_graph_relations_source_current")
