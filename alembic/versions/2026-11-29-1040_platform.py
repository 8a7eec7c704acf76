"""The platform around the memories: members and roles, key scopes, feedback, reads (decay),
profiles and idempotency keys.

* `members` is a person (email) in an organisation with an org role; `project_members` gives a
  member a role in one project (an org OWNER is OWNER of every project of the org).
* A key belongs to a member and is scoped to its project or to its whole organisation. Existing
  keys become project-scoped keys of OWNER members, so nobody loses or gains access.
* `memory_feedback`: one feedback per (memory, member); `memory_reads`: recent reads for `decay`
  (kept out of `memories` so its row layout, tuned for scans, is untouched).
* `profiles`: one generated profile per entity; `idempotency_keys`: a request key -> its job.

Revision ID: 0008_platform
"""

from __future__ import annotations

from alembic import op

revision = "0008_platform"
down_revision = "0007_job_leases_webhooks"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE members (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL CONSTRAINT fk_members_org_id_orgs REFERENCES orgs(id) ON DELETE CASCADE,
        email text NOT NULL,
        role text NOT NULL CONSTRAINT ck_members_role CHECK (role IN ('OWNER', 'READER')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_members_org_id_email UNIQUE (org_id, email)
    )
    """,
    """
    CREATE TABLE project_members (
        project_id uuid NOT NULL CONSTRAINT fk_project_members_project_id_projects
            REFERENCES projects(id) ON DELETE CASCADE,
        member_id uuid NOT NULL CONSTRAINT fk_project_members_member_id_members
            REFERENCES members(id) ON DELETE CASCADE,
        role text NOT NULL CONSTRAINT ck_project_members_role CHECK (role IN ('OWNER', 'READER')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_project_members PRIMARY KEY (project_id, member_id)
    )
    """,
    "CREATE INDEX ix_project_members_member_id ON project_members (member_id)",
    """
    ALTER TABLE api_keys
        ADD COLUMN member_id uuid CONSTRAINT fk_api_keys_member_id_members REFERENCES members(id) ON DELETE CASCADE,
        ADD COLUMN scope text NOT NULL DEFAULT 'project' CONSTRAINT ck_api_keys_scope CHECK (scope IN ('project', 'org'))
    """,
    """
    INSERT INTO members (id, org_id, email, role)
    SELECT gen_random_uuid(), p.org_id, k.owner_email, 'OWNER'
    FROM api_keys k JOIN projects p ON p.id = k.project_id
    GROUP BY p.org_id, k.owner_email
    """,
    """
    UPDATE api_keys k SET member_id = m.id
    FROM projects p, members m
    WHERE p.id = k.project_id AND m.org_id = p.org_id AND m.email = k.owner_email
    """,
    """
    INSERT INTO project_members (project_id, member_id, role)
    SELECT DISTINCT k.project_id, k.member_id, 'OWNER' FROM api_keys k
    """,
    "ALTER TABLE api_keys ALTER COLUMN member_id SET NOT NULL",
    "CREATE INDEX ix_api_keys_member_id ON api_keys (member_id)",
    """
    CREATE TABLE memory_feedback (
        id uuid PRIMARY KEY,
        project_id uuid NOT NULL CONSTRAINT fk_memory_feedback_project_id_projects
            REFERENCES projects(id) ON DELETE CASCADE,
        memory_id uuid NOT NULL,
        member_email text NOT NULL,
        feedback text NOT NULL,
        feedback_reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_memory_feedback_project_id_memory_id_member_email UNIQUE (project_id, memory_id, member_email)
    )
    """,
    """
    CREATE TABLE memory_reads (
        project_id uuid NOT NULL CONSTRAINT fk_memory_reads_project_id_projects
            REFERENCES projects(id) ON DELETE CASCADE,
        memory_id uuid NOT NULL,
        read_count integer NOT NULL DEFAULT 0,
        last_read_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_memory_reads PRIMARY KEY (project_id, memory_id)
    )
    """,
    """
    CREATE TABLE profiles (
        id uuid NOT NULL,
        project_id uuid NOT NULL CONSTRAINT fk_profiles_project_id_projects
            REFERENCES projects(id) ON DELETE CASCADE,
        entity_type text NOT NULL,
        entity_id text NOT NULL,
        profile jsonb NOT NULL DEFAULT '{}'::jsonb,
        status text NOT NULL,
        error text,
        generation_count integer NOT NULL DEFAULT 0,
        memory_count integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz,
        CONSTRAINT pk_profiles PRIMARY KEY (project_id, entity_type, entity_id),
        CONSTRAINT uq_profiles_id UNIQUE (id)
    )
    """,
    """
    CREATE TABLE idempotency_keys (
        project_id uuid NOT NULL CONSTRAINT fk_idempotency_keys_project_id_projects
            REFERENCES projects(id) ON DELETE CASCADE,
        key text NOT NULL,
        request_hash text NOT NULL,
        job_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_idempotency_keys PRIMARY KEY (project_id, key)
    )
    """,
]

DOWNGRADE = [
    "DROP TABLE idempotency_keys",
    "DROP TABLE profiles",
    "DROP TABLE memory_reads",
    "DROP TABLE memory_feedback",
    "ALTER TABLE api_keys DROP COLUMN scope, DROP COLUMN member_id",
    "DROP TABLE project_members",
    "DROP TABLE members",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
