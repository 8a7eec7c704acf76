"""Dream synthesis: the scheduler's state, one open run per user, and a cheap way to find new memories.

- `dream_state`: per project and user, what the scheduler saw (`touched_seq`: the newest eligible memory;
  `checked_seq`: where the minimum was last found short) and what the last run did (`last_seq`, its input
  hash, when it ran and when the user is due again).
- `dream_scan`: one row, the scheduler's watermark over `memories.seq` (each tick reads only memories
  added since the tick before last) and when the last tick ran (one tick per interval across processes).
- `uq_events_open_dream`: at most one open (PENDING or RUNNING) DREAM job per project and user.
- `ix_memories_seq_brin`: a BRIN index on `seq`, which follows insertion order, so a tick reads only the
  table's newest pages. A BRIN summary costs an add nothing measurable (new pages stay unsummarised until
  vacuum), unlike a B-tree every add would pay for.

Revision ID: 0017_dream
"""

from __future__ import annotations

from alembic import op

revision = "0017_dream"
down_revision = "0016_history_as_of"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE dream_state (
            project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            user_id text NOT NULL,
            touched_seq bigint NOT NULL DEFAULT 0,
            checked_seq bigint NOT NULL DEFAULT 0,
            last_seq bigint NOT NULL DEFAULT 0,
            last_input_hash text,
            last_run_at timestamptz,
            next_due_at timestamptz,
            runs integer NOT NULL DEFAULT 0,
            patterns integer NOT NULL DEFAULT 0,
            CONSTRAINT pk_dream_state PRIMARY KEY (project_id, user_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE dream_scan (
            id smallint NOT NULL CONSTRAINT pk_dream_scan PRIMARY KEY CONSTRAINT ck_dream_scan_one CHECK (id = 1),
            scanned_seq bigint NOT NULL,
            seen_seq bigint NOT NULL,
            ticked_at timestamptz NOT NULL
        )
        """
    )
    # Memories already stored are never new to Dream: the watermark starts at the current sequence value.
    op.execute(
        """
        INSERT INTO dream_scan (id, scanned_seq, seen_seq, ticked_at)
        SELECT 1, v, v, '-infinity'
        FROM coalesce(pg_sequence_last_value(pg_get_serial_sequence('memories', 'seq')), 0) AS v
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_events_open_dream ON events (project_id, (payload ->> 'user_id')) "
        "WHERE event_type = 'DREAM' AND status IN ('PENDING', 'RUNNING')"
    )
    op.execute("CREATE INDEX ix_memories_seq_brin ON memories USING brin (seq)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_memories_seq_brin")
    op.execute("DROP INDEX uq_events_open_dream")
    op.execute("DROP TABLE dream_scan")
    op.execute("DROP TABLE dream_state")
