"""Tables. Alembic migrations create them; this module is their typed description."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The dimension the schema was created with is read from the database at startup;
# this value only shapes the Python-side type.
DEFAULT_DIM = 384


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, typed as a `Table` (SQLAlchemy types `__table__` as any FROM clause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _now() -> Any:
    return func.now()


class Org(Base):
    __tablename__ = "orgs"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    custom_instructions: Mapped[str | None] = mapped_column(Text)
    custom_categories: Mapped[Any | None] = mapped_column(JSONB)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    key_prefix: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    owner_email: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    default_user_id: Mapped[str | None] = mapped_column(Text)  # for clients that name no entity (MCP)
    default_agent_id: Mapped[str | None] = mapped_column(Text)
    bound_user_id: Mapped[str | None] = mapped_column(Text)  # the key reaches only this entity's memories
    bound_agent_id: Mapped[str | None] = mapped_column(Text)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text, server_default="project")  # 'project' | 'org'
    # The key's own cap on its member's roles (READER: a read-only key); NULL: the member's roles.
    role: Mapped[str | None] = mapped_column(Text, CheckConstraint("role IN ('OWNER', 'READER')", name="role"))


class Member(Base):
    """A person (email) in an organisation, with an org role (OWNER | READER)."""

    __tablename__ = "members"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ProjectMember(Base):
    __tablename__ = "project_members"
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class MemoryFeedback(Base):
    __tablename__ = "memory_feedback"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    memory_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    member_email: Mapped[str] = mapped_column(Text)
    feedback: Mapped[str] = mapped_column(Text)
    feedback_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class MemoryRead(Base):
    """How often and how recently a memory was returned by search (the `decay` setting reads it)."""

    __tablename__ = "memory_reads"
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    memory_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    read_count: Mapped[int] = mapped_column(Integer, server_default="0")
    last_read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Profile(Base):
    __tablename__ = "profiles"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    entity_type: Mapped[str] = mapped_column(Text, primary_key=True)
    entity_id: Mapped[str] = mapped_column(Text, primary_key=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    generation_count: Mapped[int] = mapped_column(Integer, server_default="0")
    memory_count: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[str] = mapped_column(Text)
    job_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Memory(Base):
    __tablename__ = "memories"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(Text)
    app_id: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    memory: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    categories: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    embedding: Mapped[Any] = mapped_column(Vector(DEFAULT_DIM))
    immutable: Mapped[bool] = mapped_column(Boolean, server_default="false")
    expiration_date: Mapped[date | None] = mapped_column(Date)
    role: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, server_default="verbatim")
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    replaced_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # the period the memory's content is about, half-open; both NULL when it names no time (0015_event_dates)
    event_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    event_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tsv: Mapped[Any] = mapped_column(TSVECTOR)  # generated column, see the migration
    seq: Mapped[int] = mapped_column(BigInteger, Identity())  # insertion order (conversation neighbours)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class MemoryHistory(Base):
    __tablename__ = "memory_history"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    memory_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event: Mapped[str] = mapped_column(Text)
    old_memory: Mapped[str | None] = mapped_column(Text)
    new_memory: Mapped[str | None] = mapped_column(Text)
    input: Mapped[Any | None] = mapped_column(JSONB)  # rows before 0005; newer rows read it from their event
    event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(Text)
    app_id: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    categories: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    event_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the new state's event period
    event_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # as_of (0016_history_as_of): when the change counts (NULL = created_at; an add's `timestamp` backdates
    # it), the memory that replaced a retired one (a DELETE row that kept the memory), the vector a change
    # took away (a text-changing UPDATE, a hard DELETE)
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replaced_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    old_embedding: Mapped[Any | None] = mapped_column(Vector(DEFAULT_DIM))


class Entity(Base):
    __tablename__ = "entities"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Event(Base):
    """An add/delete request and its outcome; also the job record for asynchronous work."""

    __tablename__ = "events"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    payload: Mapped[Any | None] = mapped_column(JSONB)
    results: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(Text)  # the claim holding a RUNNING job
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scope_key: Mapped[str | None] = mapped_column(Text)  # jobs of one scope apply in acceptance order
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # retry backoff
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last hand-off to a queue
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # coalesced adds: the first one's id


class Webhook(Base):
    """A project's webhook endpoint; its deliveries are `events` rows of kind WEBHOOK."""

    __tablename__ = "webhooks"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    secret: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class GraphNode(Base):
    """An entity of graph memory, resolved per exact scope (see the 0009_graph migration)."""

    __tablename__ = "graph_nodes"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(Text)
    app_id: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text))
    embedding: Mapped[Any | None] = mapped_column(Vector(DEFAULT_DIM))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class GraphRelation(Base):
    """A typed, bi-temporal relation between two graph nodes, from one memory."""

    __tablename__ = "graph_relations"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(Text)
    app_id: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[int] = mapped_column(ForeignKey("graph_nodes.id", ondelete="CASCADE"))
    relationship: Mapped[str] = mapped_column(Text)
    target_id: Mapped[int] = mapped_column(ForeignKey("graph_nodes.id", ondelete="CASCADE"))
    fact: Mapped[str | None] = mapped_column(Text)
    memory_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("memories.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    valid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # began to hold
    invalid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # stopped holding
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())  # recorded
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # retired by memserver
    invalidated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class DreamState(Base):
    """Dream synthesis per project and user: what the scheduler saw and what the last run did."""

    __tablename__ = "dream_state"
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    touched_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")  # newest eligible memory seen
    checked_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")  # minimum last found short here
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")  # newest memory the last run read
    last_input_hash: Mapped[str | None] = mapped_column(Text)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    runs: Mapped[int] = mapped_column(Integer, server_default="0")
    patterns: Mapped[int] = mapped_column(Integer, server_default="0")


class DreamScan(Base):
    """The Dream scheduler's one row: its watermark over `memories.seq` and when it last ran."""

    __tablename__ = "dream_scan"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scanned_seq: Mapped[int] = mapped_column(BigInteger)
    seen_seq: Mapped[int] = mapped_column(BigInteger)
    ticked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsageCounter(Base):
    """What a project did in one hour that no other table records (searches, LLM calls outside jobs): counted
    in memory by each API process, added here periodically (`services.usage`)."""

    __tablename__ = "usage_counters"
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    metric: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class UsageMeta(Base):
    """Since when the server counts (`counting_since`): earlier days have no counts."""

    __tablename__ = "usage_meta"
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
