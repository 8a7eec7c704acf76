"""History records enough to rebuild memory as it stood at any moment (`as_of` on list, search and get).

- `occurred_at`: when the change counts on the recorded-time axis. An add's `timestamp` backdates its ADD
  (a 2023 backfill reads as of 2023), and the edits, retirements and deletions an inferred add with a
  `timestamp` makes count at that timestamp. NULL means `created_at` (rows written before this revision;
  nothing is rewritten for them), so readers use `coalesce(occurred_at, created_at)`, which is indexed.
- `replaced_by`: on the DELETE row that retires a memory (superseded, kept), the memory that replaced it.
  Until now a retirement and a hard deletion wrote the same row.
- `old_embedding`: the vector a change took away (a text-changing UPDATE, a hard DELETE), so a search as of
  a past moment scores a past text by its own vector. About 4 x dim + 8 bytes per such row (1,544 bytes at
  384 dimensions; `bench/README.md` has the measured table growth).

Backfills, both bounded by the rows they touch: the ADD row of a memory whose `created_at` lies before the
row's own (an add with a `timestamp`) gets that `created_at` as `occurred_at`; the first DELETE row of a
memory that is retired today gets its `replaced_by`. What cannot be recovered stays as it was: the vectors
of changes made before this revision (those past versions score as having none), and the ADD time and
retirement of memories already deleted.

The vector dimension follows `memories.embedding` (fixed when the schema was created), as the graph's does.
The column additions are instant (nullable, no default); the index is built over the whole table.

Revision ID: 0016_history_as_of
"""

from __future__ import annotations

from alembic import op

revision = "0016_history_as_of"
down_revision = "0015_event_dates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dim = op.get_bind().exec_driver_sql(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memories'::regclass AND attname = 'embedding'"
    ).scalar_one()
    op.execute(
        "ALTER TABLE memory_history ADD COLUMN occurred_at timestamptz, ADD COLUMN replaced_by uuid, "
        f"ADD COLUMN old_embedding vector({int(dim)})"
    )
    op.execute(
        "CREATE INDEX ix_memory_history_occurred ON memory_history (project_id, (coalesce(occurred_at, created_at)))"
    )
    op.execute(
        """
        UPDATE memory_history h SET occurred_at = m.created_at FROM memories m
         WHERE h.event = 'ADD' AND m.project_id = h.project_id AND m.id = h.memory_id
           AND m.created_at < h.created_at - interval '1 second'
        """
    )
    op.execute(
        """
        UPDATE memory_history h SET replaced_by = m.replaced_by FROM memories m
         WHERE m.replaced_by IS NOT NULL AND h.project_id = m.project_id
           AND h.id = (SELECT x.id FROM memory_history x
                        WHERE x.project_id = m.project_id AND x.memory_id = m.id AND x.event = 'DELETE'
                        ORDER BY x.created_at, x.id LIMIT 1)
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_memory_history_occurred")
    op.execute("ALTER TABLE memory_history DROP COLUMN occurred_at, DROP COLUMN replaced_by, DROP COLUMN old_embedding")
