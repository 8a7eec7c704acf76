"""Keep memory rows, embedding included, inline in the heap instead of in TOAST.

A 384-dimension embedding is 1.5 kB; with the text, its tsvector and metadata a typical memory row
is just over Postgres' default 2 kB TOAST threshold, so the embedding (storage EXTERNAL) was moved
out of line. Every exact similarity scan then paid a TOAST index lookup per memory (5x the buffer
reads of the scan itself) and every add wrote two extra index and heap tuples. Raising the
table's toast_tuple_target to its maximum keeps rows up to ~8 kB inline; larger rows (long texts,
embeddings of 2,000+ dimensions) are still toasted as before.

Rows already stored keep their layout until rewritten (any UPDATE, or VACUUM FULL memories).

Revision ID: 0003_memories_inline_rows
Revises: 0002_memory_sequence
Create Date: 2026-11-24 16:00
"""

from __future__ import annotations

from alembic import op

revision = "0003_memories_inline_rows"
down_revision = "0002_memory_sequence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE memories SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    op.execute("ALTER TABLE memories RESET (toast_tuple_target)")
