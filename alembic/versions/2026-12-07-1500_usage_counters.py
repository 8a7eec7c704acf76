"""Usage counters: what a project did per hour that no table records (searches, LLM calls outside jobs),
counted in memory by each API process and added here periodically (`services.usage`).

`usage_meta` says since when the server counts: days before it have no search counts (null, not 0).

Revision ID: 0018_usage_counters
"""

from __future__ import annotations

from alembic import op

revision = "0018_usage_counters"
down_revision = "0017_dream"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE usage_counters (
            project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
            hour timestamptz NOT NULL,
            metric text NOT NULL,
            value bigint NOT NULL,
            CONSTRAINT pk_usage_counters PRIMARY KEY (project_id, hour, metric)
        )
        """
    )
    op.execute(
        "CREATE TABLE usage_meta (name text CONSTRAINT pk_usage_meta PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute("INSERT INTO usage_meta (name) VALUES ('counting_since')")


def downgrade() -> None:
    op.execute("DROP TABLE usage_meta")
    op.execute("DROP TABLE usage_counters")
