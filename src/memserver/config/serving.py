"""How requests and jobs are served: runners, webhooks, keys, search, graph, MCP, console, usage, limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from memserver.config.fields import Networks


class WorkerSettings(BaseModel):
    runner: Literal["inprocess", "celery"] = Field(
        "inprocess", description="Where async jobs run: inside the API process, or Celery workers over Redis."
    )
    inprocess_concurrency: int = Field(4, description="In-process runner: jobs run at once per API process.")
    lease_s: float = Field(
        30.0,
        description="A claimed job's lease: renewed while it runs; once expired, any runner may take the job over.",
    )
    heartbeat_s: float = Field(10.0, description="How often a running job's lease is renewed (well under lease_s).")
    max_attempts: int = Field(5, description="Attempts of a failing job before it ends FAILED with its reason.")
    retry_backoff_s: float = Field(2.0, description="Delay before a failed job's first retry; doubles each attempt.")
    retry_backoff_max_s: float = Field(300.0, description="Longest delay between two attempts of a job.")
    poll_interval_s: float = Field(
        2.0,
        description="How often every runner sweeps for due jobs (failed hand-offs, expired leases, deliveries).",
    )
    redispatch_after_s: float = Field(
        120.0,
        description="A PENDING job handed off this long ago without being claimed is handed off again "
        "(its queue message may be lost).",
    )
    handoff_timeout_s: float = Field(
        2.0, description="Celery runner: longest wait for Redis when handing off a job (off the event loop)."
    )
    max_pending_per_project: int = Field(
        10_000,
        description="Asynchronous adds a project may have waiting or running; past it, adds get 429 with Retry-After.",
    )
    max_pending_exports_per_project: int = Field(
        50,
        description="Memory exports (LLM jobs, POST /v1/exports/) a project may have waiting or running; "
        "past it, 429 with Retry-After.",
    )
    retry_after_s: int = Field(5, description="Retry-After (seconds) sent with a back-pressure 429.")
    max_running_per_project: int | None = Field(
        None,
        ge=1,
        description="Jobs one project may run at once while another project has jobs waiting (unset: no cap; "
        "free slots always go to the project running the fewest). An idle system still gives one project all.",
    )
    coalesce_max_adds: int = Field(
        8,
        ge=1,
        description="Queued infer=true adds of one scope that run as one extraction call (1: each add alone).",
    )
    coalesce_max_chars: int = Field(
        8000, ge=1, description="Message characters one coalesced extraction call may hold (the adds that fit)."
    )


class WebhookSettings(BaseModel):
    allow_private_urls: bool = Field(
        False,
        description="Accept webhook URLs on loopback, private or link-local addresses (tests, internal receivers).",
    )
    allowed_networks: Networks = Field(
        default_factory=list,
        description='Networks (CIDRs, JSON list, e.g. ["10.0.5.0/24"]) webhook receivers may be on although '
        "private, while every other internal address stays refused.",
    )
    timeout_s: float = Field(
        10.0,
        description="One deadline for a whole delivery attempt (resolution, connection, request and answer), "
        "in seconds; a receiver that answers slowly or drips bytes is cut off at it.",
    )
    concurrency: int = Field(
        4,
        ge=1,
        description="In-process runner: deliveries sent at once per process, apart from the slots of adds "
        "(a slow receiver never holds a slot an add needs).",
    )
    max_per_project: int = Field(20, ge=1, description="Webhooks one project may have; creating one more is a 400.")
    max_running_per_project: int = Field(
        2,
        ge=1,
        description="Deliveries of one project sent at once (all processes): receivers that are slow or silent "
        "hold at most this many delivery slots, the rest stay free for other projects.",
    )
    max_attempts: int = Field(8, description="Attempts of one webhook delivery before it ends FAILED.")
    retry_backoff_s: float = Field(5.0, description="Delay before a delivery's first retry; doubles each attempt.")
    retry_backoff_max_s: float = Field(3600.0, description="Longest delay between two delivery attempts.")


class AuthSettings(BaseModel):
    key_cache_ttl_s: float = Field(
        5.0,
        description="Seconds a resolved API key is cached in-process (revocation takes effect within this).",
    )
    key_cache_size: int = Field(
        10_000, description="Most API keys (known or unknown) the in-process key cache holds; least recently used go."
    )


class SearchSettings(BaseModel):
    exact_scan_limit: int = Field(
        20_000,
        description="Scopes with at most this many memories are searched exactly; larger ones use the HNSW index.",
    )
    hnsw_ef_search: int = Field(100, description="pgvector hnsw.ef_search for index scans.")
    neighbour_gap_s: float = Field(
        3600.0,
        description="Memories added one after another to a scope within this many seconds are conversational "
        "neighbours for search.",
    )
    graph_weight: float = Field(
        0.0,
        ge=0.0,
        description="Graph-aware hybrid search: weight of the `graph` score of memories linked through current "
        "relations to the entities a query names (0: off, no graph query; see bench/README.md for the measurement).",
    )
    graph_hops: int = Field(
        2, ge=1, le=3, description="Graph-aware search: relations walked away from a named entity, at most."
    )
    graph_fanout: int = Field(
        20, ge=1, le=100, description="Graph-aware search: relations followed per entity (newest first), at most."
    )


class GraphSettings(BaseModel):
    neo4j_url: str | None = Field(
        None,
        description="bolt:// or neo4j:// URL of a Neo4j that mirrors the graph (unset: the graph lives in Postgres "
        "only, which is always its store of record).",
    )
    neo4j_user: str | None = Field(None, description="Neo4j user name.")
    neo4j_password: SecretStr | None = Field(None, description="Neo4j password.")
    neo4j_database: str | None = Field(None, description="Neo4j database name (unset: the server's default).")
    neo4j_timeout_s: float = Field(
        5.0, description="Connection timeout and retry budget of one Neo4j sync (a failed sync job is retried later)."
    )
    search_relations: int = Field(
        10, description="Most relations a v1/v2 search with enable_graph returns (of the entities the query names)."
    )


class McpSettings(BaseModel):
    enabled: bool = Field(True, description="Serve the Model Context Protocol over streamable HTTP at /mcp.")
    url: str = Field(
        "http://127.0.0.1:8000",
        description="`memserver mcp` (stdio): the memserver it forwards tool calls to. Its API key is read "
        "from MEM0_API_KEY or MEMSERVER_API_KEY.",
    )
    timeout_s: float = Field(60.0, description="Timeout of one REST request made by an MCP tool call.")


class ConsoleSettings(BaseModel):
    enabled: bool = Field(True, description="Serve the web console (static HTML/JS, no build step) at /console.")


class UsageSettings(BaseModel):
    flush_interval_s: float = Field(
        10.0,
        gt=0,
        description="How often each API process adds the searches (and LLM calls outside jobs) it counted to "
        "the database for GET /v1/memserver/usage; a process that dies loses at most this much of them.",
    )


class RateLimitSettings(BaseModel):
    """Requests per window per API key and per project; 0 = unlimited. Over the limit: 429 + Retry-After."""

    per_key: int = Field(0, description="Requests one API key may make per window (0 = no limit).")
    per_project: int = Field(0, description="Requests all keys of one project may make per window (0 = no limit).")
    window_s: int = Field(
        60, description="Length of a rate-limit window in seconds (windows are aligned to the clock)."
    )
    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="'memory' counts per API process; 'redis' shares the counts of every replica through "
        "MEMSERVER_REDIS__URL.",
    )

    @property
    def enabled(self) -> bool:
        return self.per_key > 0 or self.per_project > 0


class LimitsSettings(BaseModel):
    """Bounds on the work one request may ask for; exceeding one is a 400 (413 for the body size)."""

    max_body_bytes: int = Field(4 * 1024 * 1024, description="Largest request body in bytes (413 above it).")
    max_import_bytes: int = Field(
        512 * 1024 * 1024,
        description="Largest body of POST /v1/memserver/import/ (a project's JSONL backup), in bytes (413 above "
        "it); it is spooled to a temporary file (TMPDIR), not held in memory.",
    )
    max_messages: int = Field(1_000, description="Most messages in one add (each is one embedding).")
    max_text_chars: int = Field(50_000, description="Longest text of one message or memory update, in characters.")
    max_query_chars: int = Field(8_000, description="Longest search query, in characters.")
    max_metadata_bytes: int = Field(64 * 1024, description="Largest `metadata` object, as JSON bytes.")
    max_json_depth: int = Field(32, description="Deepest nesting of any JSON value in a request (metadata...).")
    max_filter_depth: int = Field(16, description="Deepest nesting of AND/OR/NOT in `filters`.")
    max_list_items: int = Field(
        1_000, description="Most items in an `in` list, `memory_ids`, `categories` or batch of a filter."
    )
    max_entity_id_chars: int = Field(255, description="Longest user_id / agent_id / app_id / run_id.")
    max_categories: int = Field(
        50, description="Most `custom_categories` of an add or a project (each one is in every extraction prompt)."
    )
    max_category_chars: int = Field(500, description="Longest custom category: its name and description together.")
