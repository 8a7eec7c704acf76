"""Response shapes of the Mem0 routes, for `/openapi.json`, and the response that puts them on the wire.

The models document what `api.serialize` and `api.add_wire` build (contract §2-§3); they are never
used to validate or re-serialise a response. Routes return `wire(body)`: FastAPI passes a returned
`Response` through untouched, so declaring `response_model=` costs nothing per request, and the bytes
are the ones FastAPI produced before the models existed (pydantic's JSON encoder over plain dicts:
datetimes as `...Z`, compact separators), minus its validation pass over the dict.

`fields=[...]` on list and search keeps only the named keys (and `id`) of each memory.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from memserver.api.kit.wire import EventOp, JobState, Message, Out, Page
from memserver.services.project_settings import ProjectSettings


class StructuredAttributes(Out):
    """Calendar facts of `created_at` (UTC)."""

    day: int
    hour: int
    year: int
    month: int
    minute: int
    quarter: int
    is_weekend: bool
    day_of_week: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    day_of_year: int
    week_of_year: int


class Memory(Out):
    """The memory object (contract §3): one superset shape for every client generation."""

    id: str = Field(description="UUID")
    memory: str
    user_id: str | None
    agent_id: str | None
    app_id: str | None
    run_id: str | None
    session_id: str | None = Field(description="The same value as run_id (the v3 name).")
    hash: str = Field(description="md5 of the text")
    metadata: dict[str, Any] | None
    categories: list[str]
    immutable: bool
    expiration_date: date | None
    created_at: datetime
    updated_at: datetime
    structured_attributes: StructuredAttributes | None
    replaced_by: str | None = Field(description="The id of the memory that superseded this one.")
    synthesized: bool
    lifecycle_state: Literal["active", "superseded"]
    owner: str | None
    provenance: dict[str, Any] | None = Field(
        description="memserver extension: the add (event_id) and message indices the memory came from."
    )


class ScoreBreakdown(Out):
    semantic: float
    bm25: float
    entity: float
    temporal: float | None = Field(None, description="Hybrid retrieval only.")
    context: float | None = Field(None, description="Hybrid retrieval only.")


class SearchHit(Memory):
    score: float = Field(description="0..1")
    score_breakdown: ScoreBreakdown


class MemoryPage(Page[Memory]):
    pass


class SearchResults(Out):
    """v3 search."""

    results: list[SearchHit]


class SearchResultsV11(SearchResults):
    """v1/v2 search with output_format=v1.1 or enable_graph (`relations`: those of the entities the query names)."""

    relations: list[Relation]


class MemoryData(Out):
    memory: str


class MemoryEvent(Out):
    """A memory an add created or changed (v1.0 reads `data.memory`, v1.1 `memory`)."""

    id: str | None
    event: EventOp
    data: MemoryData
    previous_memory: str | None = Field(None, description="UPDATE only: the text before.")
    memory: str


class AddQueued(Out):
    """An add's event: PENDING until a worker has run it (SUCCEEDED at once for infer=false)."""

    message: str
    status: JobState
    event_id: str


class AddResponse(AddQueued):
    """v3 add: infer=false also lists the memory events (`results`)."""

    results: list[MemoryEvent] | None = Field(None, description="infer=false only.")


class AddResponseV11(Out):
    """v1 add with output_format=v1.1 (`relations`: the graph changes of a processed add with enable_graph)."""

    results: list[AddQueued | MemoryEvent]
    relations: GraphChanges | list[Any]


class HistoryEntry(Out):
    id: str
    memory_id: str
    input: list[Any] = Field(description="The messages of the add that caused the change.")
    old_memory: str | None
    new_memory: str | None
    user_id: str | None
    agent_id: str | None
    app_id: str | None
    run_id: str | None
    session_id: str | None
    categories: list[str]
    event: EventOp
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class HistoryPage(Page[HistoryEntry]):
    pass


class EntityMemory(Out):
    """A memory as GET /v1/memories/{entity_type}/{entity_id}/ lists it."""

    id: str
    memory: str
    metadata: dict[str, Any] | None
    categories: list[str]
    created_at: datetime
    updated_at: datetime
    input: list[Any]
    is_updated: bool


class EntityMemoryPage(Page[EntityMemory]):
    pass


class Entity(Out):
    id: str = Field(description="Numeric, as a string.")
    name: str = Field(description="The user, agent, app or run id.")
    type: Literal["user", "agent", "app", "run"]
    created_at: datetime
    updated_at: datetime
    owner: str
    organization: str
    metadata: dict[str, Any] | None
    total_memories: int


class EntityPage(Page[Entity]):
    total_users: int
    total_agents: int
    total_apps: int
    total_runs: int


class CreatedEntity(Out):
    id: int
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    graph_entities: None
    is_deleted: bool
    project: str


class CreatedUser(CreatedEntity):
    user_id: str


class CreatedAgent(CreatedEntity):
    agent_id: str
    name: str


class CreatedApp(CreatedEntity):
    app_id: str
    name: str


class CreatedRun(CreatedEntity):
    run_id: str
    name: str


class Event(Out):
    id: str
    event_type: str = Field(description="ADD, ...")
    status: JobState
    payload: Any = Field(description="The request, normalised.")
    metadata: dict[str, Any] | None
    results: list[Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    latency: float | None = Field(description="milliseconds")
    graph_status: str | None


class EventPage(Page[Event]):
    pass


class MemoryDeleted(Message):
    cascade_count: int | None = Field(None, description="delete_linked=true only: superseded memories deleted too.")


class MemoriesDeleted(Message):
    deleted_count: int


class EntityDeleted(Message):
    deleted_memories: int


class Ping(Out):
    status: Literal["ok"]
    org_id: str
    project_id: str
    user_email: str
    org_name: str
    project_name: str


class Health(Out):
    status: Literal["ok", "degraded"]
    database: str = Field(description="'ok' or 'error: <kind>'")
    embedder: str


# -- graph memory (v1/v2 `relations`) ------------------------------------------------------------


class Relation(Out):
    """A relation as v2 search and get_all list them (`score` on search only)."""

    source: str
    source_type: str | None = None
    relationship: str
    target: str
    target_type: str | None = None
    score: float | None = Field(None, description="Search only.")


class GraphChanges(Out):
    """`relations` of a processed v1 add with output_format=v1.1: one inner list per change."""

    added_entities: list[list[dict[str, str]]]
    deleted_entities: list[list[dict[str, str]]]


class MemoriesWithRelations(Out):
    """v2 list with enable_graph (unpaged)."""

    results: list[Memory]
    relations: list[Relation]


class MemoryPageWithRelations(MemoryPage):
    """v2 list with enable_graph and page/page_size."""

    relations: list[Relation]


class GraphEntity(Out):
    id: int
    name: str
    type: str | None
    aliases: list[str]
    user_id: str | None
    agent_id: str | None
    app_id: str | None
    run_id: str | None
    created_at: datetime


class TimelineRelation(Out):
    """A relation with both time axes: when it held (valid/invalid) and when memserver knew it (created/expired)."""

    id: str
    source: str
    source_type: str | None = None
    relationship: str
    target: str
    target_type: str | None = None
    fact: str | None = None
    memory_id: str | None
    event_id: str | None
    valid_at: datetime | None
    invalid_at: datetime | None
    created_at: datetime
    expired_at: datetime | None
    invalidated_by: str | None
    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None


class GraphTimeline(Out):
    """An entity's nodes in the scope and every relation of them, current and retired (memserver extension)."""

    name: str
    entities: list[GraphEntity]
    at: datetime | None
    relations: list[TimelineRelation]


# -- organisations, projects, members -----------------------------------------------------------


class Member(Out):
    username: str
    email: str
    role: str
    user_id: str


class Members(Out):
    members: list[Member]


class OrgSummary(Out):
    """An organisation as the list shows it."""

    org_id: str
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    is_default: bool
    is_owner: bool
    user_role: str | None
    projects: int = Field(description="How many projects the organization has.")


class Org(Out):
    org_id: str
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    members: list[Member]
    is_default: bool
    byok_enabled: bool
    invitations: list[Any]
    owner_pricing_plan: str
    is_owner: bool
    user_role: str | None


class OrgCreated(Message):
    org_id: str


class ProjectCreated(Message):
    project_id: str


class Project(ProjectSettings):
    """A project with all its settings (contract §2.8): the keys of `ProjectSettings`, and these."""

    project_id: str
    id: str
    org_id: str
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
    members: list[Member]
    usecase: str | None
    update_custom_instructions: None
    summary_custom_instructions: None
    summary_batch_size: None
    summary_max_tokens: None
    expiration_date: None
    is_default: bool
    active_prompt_profile: None
    user_role: str | None


# -- feedback, stats, filters -------------------------------------------------------------------


class Feedback(Out):
    id: str | None
    memory_id: str
    feedback: Literal["POSITIVE", "NEGATIVE", "VERY_NEGATIVE"] | None
    feedback_reason: str | None
    user_email: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class FeedbackGiven(Feedback):
    message: str


class FeedbackList(Out):
    count: int
    results: list[Feedback]


class Stats(Out):
    total_memories: int
    total_retrieval_events: int
    total_add_events: int
    total_api_retrieval_events: int
    total_retrieval_events_limit: int
    total_users_with_memories: int
    total_agents_with_memories: int
    total_runs_with_memories: int
    memories_per_user: int
    memories_per_agent: int
    memories_per_run: int


class FilterOption(Out):
    value: str
    label: str


class FilterParameter(Out):
    name: str
    label: str
    type: str
    placeholder: str
    options: list[FilterOption]


class EntityFilters(Out):
    event_type: list[str]
    categories: list[str]
    users: list[str]
    parameters: list[FilterParameter]


# -- exports, summaries, profiles, import -------------------------------------------------------


class ExportAccepted(Message):
    id: str


class ExportDocument(Out):
    """The export: an object shaped by the JSON schema the export was requested with."""

    model_config = ConfigDict(extra="allow")


class Summary(Out):
    summary: str
    filters: dict[str, Any]
    memory_count: int
    created_at: datetime


class EntityProfileSettings(Out):
    schema_: dict[str, Any] | None = Field(alias="schema")
    custom_instructions: str | None


class ProfileSettings(Out):
    enabled: bool
    entities: dict[str, EntityProfileSettings] = Field(description="Per entity type: user, agent, app, run.")
    capabilities: dict[str, bool]


class ProfileJobAccepted(Out):
    message: str
    job_id: str
    status: str
    status_url: str
    operation: str | None
    entity_type: str | None
    entity_count_reserved: int
    event_id: str
    replayed: bool
    usage_units: int


class ProfileJobStatus(Out):
    id: str
    operation: str | None
    entity_type: str | None
    status: str
    total: int
    enumeration_complete: bool
    completed: int
    succeeded: int
    failed: int
    skipped: int
    results: list[dict[str, Any]]
    error: str | None


class ProfileJob(Out):
    job: ProfileJobStatus


class EntityProfile(Out):
    profile: dict[str, Any]
    status: str
    entity_type: str
    entity_id: str
    updated_at: datetime | None
    generation_count: int


class Imported(Message):
    imported: dict[str, int]


# -- webhooks -----------------------------------------------------------------------------------


class Webhook(Out):
    webhook_id: str
    name: str
    url: str
    event_types: list[str]
    is_active: bool
    project: str = Field(description="The project's name.")
    owner: str | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(Webhook):
    secret: str | None = Field(description="Signs the deliveries; shown once.")


class Delivery(Out):
    delivery_id: str
    event_type: str | None
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    history: list[dict[str, Any]]
    body: Any
    created_at: datetime
    completed_at: datetime | None
    latency: float | None


class Deliveries(Out):
    results: list[Delivery]
    page: int
    page_size: int


# -- operations ---------------------------------------------------------------------------------


class Readiness(Out):
    status: Literal["ready", "unavailable"]
    database: str = Field(description="'ok' or 'error: <kind>'")
    embedder: str = Field(description="'ok' or 'error: <kind>'")
