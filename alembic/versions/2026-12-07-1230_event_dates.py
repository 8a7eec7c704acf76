"""Every memory may know the period its content is about (its event dates), apart from when it was recorded.

Two `timestamptz` columns, half-open `[event_start, event_end)`, both NULL when the memory names no time.
Not one `tstzrange`: search reads the columns of a whole scope as two float arrays (decoded at C speed),
where a `tstzrange[]` makes one asyncpg `Range` object per memory, and export/import moves timestamps by
kind already. The GiST index on the range expression answers "overlaps this range" for scopes too large to
scan; it needs `btree_gist` for the `project_id` part (contrib, shipped with every Postgres we target).
History rows carry the period of the state they record, like categories and metadata.
The DDL adds nullable columns without a default: instant on a table of any size.

Revision ID: 0015_event_dates
"""

from __future__ import annotations

from alembic import op

revision = "0015_event_dates"
down_revision = "0014_event_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE memories ADD COLUMN event_start timestamptz, ADD COLUMN event_end timestamptz, "
        "ADD CONSTRAINT ck_memories_event_period "
        "CHECK ((event_start IS NULL) = (event_end IS NULL) AND event_end > event_start)"
    )
    op.execute("ALTER TABLE memory_history ADD COLUMN event_start timestamptz, ADD COLUMN event_end timestamptz")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute(
        "CREATE INDEX ix_memories_event_period ON memories "
        "USING gist (project_id, tstzrange(event_start, event_end, '[)')) WHERE event_start IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_memories_event_period")
    op.execute("ALTER TABLE memory_history DROP COLUMN event_start, DROP COLUMN event_end")
    op.execute(
        "ALTER TABLE memories DROP CONSTRAINT ck_memories_event_period, DROP COLUMN event_start, DROP COLUMN event_end"
    )
    # btree_gist stays: other objects may have come to use it, and an unused extension costs nothing
