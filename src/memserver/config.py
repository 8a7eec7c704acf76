"""Settings: the one place that reads the environment (prefix MEMSERVER_, nested with __)."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "sk-placeholder", ""}
_DEFAULT_DB_PASSWORDS = {"memserver", "postgres", "password"}


def _check_networks(values: list[str]) -> list[str]:
    for value in values:
        ipaddress.ip_network(value.strip(), strict=False)  # ValueError names the bad value
    return values


Networks = Annotated[list[str], AfterValidator(_check_networks)]


def _default_data_dir() -> Path:
    # Root runs the embedded Postgres as an unprivileged OS user, which cannot enter /root;
    # a service-style path keeps the data reachable without widening any permissions.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/memserver")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "memserver"


class DatabaseSettings(BaseModel):
    pool_size: int = Field(
        10, description="SQLAlchemy connection pool size per process (searches use a second pool of this size)."
    )
    max_overflow: int = Field(10, description="Extra connections allowed above pool_size under load, per pool.")
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")
    statement_timeout_ms: int = Field(30_000, description="Server-side statement timeout for API queries.")


class EmbeddedPostgresSettings(BaseModel):
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded Postgres keeps its data (used only without MEMSERVER_DATABASE_URL).",
    )
    port: int = Field(0, description="TCP port on 127.0.0.1 for the embedded Postgres; 0 picks a free one.")
    os_user: str = Field(
        "postgres",
        description="Unprivileged OS user that runs the embedded Postgres when memserver runs as root "
        "(created as a system user if it does not exist).",
    )


class EmbedderSettings(BaseModel):
    provider: Literal["local", "openai"] = Field(
        "local",
        description="'local' = offline all-MiniLM-L6-v2; 'openai' = any OpenAI-compatible /embeddings.",
    )
    model: str = Field("all-MiniLM-L6-v2", description="Embedding model name sent to the OpenAI-compatible API.")
    dim: int = Field(384, description="Vector dimension; must match the migrated schema.")
    base_url: str | None = Field(None, description="Base URL of the OpenAI-compatible API (e.g. http://host/v1).")
    api_key: SecretStr | None = Field(None, description="API key for the OpenAI-compatible embeddings API.")
    cache_dir: Path | None = Field(
        None, description="Local embedder: where the built ONNX model is cached (default <data_dir>/models)."
    )
    quantized: bool = Field(
        True, description="Local embedder: int8 weights (about 2x faster on CPU, cosine ~0.99 to fp32)."
    )
    threads: int = Field(0, description="Local embedder: texts embedded in parallel (0 = number of cores).")
    max_batch: int = Field(256, description="OpenAI-compatible embedder: most texts sent in one request.")
    cache_size: int = Field(4096, description="Most embeddings kept in the in-process LRU cache (0 disables it).")
    cache_max_bytes: int = Field(
        16 * 1024 * 1024, description="Memory the embedding cache may use, in bytes (vectors and keys)."
    )
    cache_max_text_chars: int = Field(2_000, description="Texts longer than this are embedded without being cached.")
    timeout_s: float = Field(30.0, description="Timeout of one embeddings request (OpenAI-compatible).")


class LLMSettings(BaseModel):
    base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible chat completions API (e.g. http://host:11434/v1)."
    )
    api_key: SecretStr | None = Field(
        None, description="API key for the LLM endpoint. The LLM is enabled when this or base_url is set."
    )
    model: str = Field("gpt-4.1-mini", description="Chat model used for memory extraction.")
    timeout_s: float = Field(60.0, description="Timeout of one LLM request, in seconds.")
    max_retries: int = Field(
        2, description="Retries of a failed LLM request (timeouts, 429, 5xx), with the SDK's exponential backoff."
    )
    temperature: float | None = Field(
        0.0,
        description="Sampling temperature (0 keeps extraction repeatable; unset: not sent). Not sent to a model "
        "found to refuse it (OpenAI's reasoning models).",
    )
    seed: int | None = Field(
        0,
        description="Seed sent with every request, for repeatable replies where the server accepts one (unset: none).",
    )
    vision: bool = Field(False, description="The model reads images; when false, image parts are not sent.")
    structured_output: Literal["auto", "json_schema", "json_object", "text"] = Field(
        "auto",
        description="How JSON replies are requested: 'auto' tries json_schema and falls back to json_object, then "
        "to plain text with the schema in the instructions, for servers that refuse them (llama.cpp, some Ollama "
        "versions, LM Studio); or force one mode.",
    )
    system_role: Literal["auto", "system", "merge"] = Field(
        "auto",
        description="'auto' sends a system message and, for a model or server found to refuse the system role, "
        "puts the instructions into the first user message instead; 'system' or 'merge' forces either.",
    )
    max_tokens: int | None = Field(
        4096,
        description="Ceiling of the tokens one LLM reply may use; each request asks for what its reply should "
        "need, up to this (unset: max_tokens is not sent and the server's default applies).",
    )
    reasoning_effort: str | None = Field(
        None,
        description="Sent as reasoning_effort when set (e.g. 'low'; 'none' turns thinking off on Ollama's /v1).",
    )

    @property
    def configured(self) -> bool:
        """An LLM endpoint was set up (infer=true can extract memories)."""
        return self.base_url is not None or self.api_key is not None


class DocumentSettings(BaseModel):
    allow_private_urls: bool = Field(
        False,
        description="Fetch pdf_url/txt_url/mdx_url parts from private, loopback and link-local addresses too "
        "(off: only public http(s) hosts, so an add cannot make the server probe its own network).",
    )
    max_bytes: int = Field(5_000_000, description="Largest document (download or base64) read from a message part.")
    max_chars: int = Field(50_000, description="Text kept from one document part (the rest is cut, with a note).")
    max_parts: int = Field(
        5, description="Most document parts (pdf_url, txt_url, mdx_url) in one add; more is refused (400)."
    )
    max_total_chars: int = Field(
        100_000,
        description="Document text one add may give the model, all its documents together (the rest is cut, "
        "with a note on the add's event).",
    )
    deadline_s: float = Field(
        30.0,
        description="One deadline for fetching and parsing all documents of an add, in seconds; past it the "
        "add is refused (400, or FAILED when asynchronous) and nothing is written.",
    )
    max_images: int = Field(5, description="Most image parts in one add (sent to a vision model); more is a 400.")
    max_image_bytes: int = Field(
        2_000_000, description="Largest inline (base64) image of an add, in bytes; larger is refused (400)."
    )
    pdf_max_pages: int = Field(500, description="Pages read from one PDF (the rest is cut, with a note).")
    pdf_cpu_s: int = Field(
        10, description="CPU seconds the child process that parses one PDF may use; then it is killed (400)."
    )
    pdf_memory_mb: int = Field(
        512, description="Address space of the child process that parses one PDF, in MB; more is refused (400)."
    )
    pdf_timeout_s: float = Field(
        20.0, description="Wall-clock seconds one PDF may take to parse; then its child process is killed (400)."
    )
    pdf_concurrency: int = Field(
        2, description="PDFs parsed at once per process (each in its own child process); the others wait."
    )
    timeout_s: float = Field(
        15.0,
        description="One deadline for a whole document download (resolution, connection, redirects and body), "
        "in seconds; a server that drips bytes is cut off at it.",
    )
    allowed_networks: Networks = Field(
        default_factory=list,
        description='Networks (CIDRs, JSON list, e.g. ["10.0.5.0/24"]) documents may be fetched from although '
        "private, while every other internal address stays refused.",
    )
    max_redirects: int = Field(
        3, ge=0, description="Redirects followed when fetching a document; each target is checked like the URL."
    )


class RedisSettings(BaseModel):
    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL used by the Celery worker runner.")


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


class LimitsSettings(BaseModel):
    """Bounds on the work one request may ask for; exceeding one is a 400 (413 for the body size)."""

    max_body_bytes: int = Field(4 * 1024 * 1024, description="Largest request body in bytes (413 above it).")
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEMSERVER_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["dev", "test", "prod"] = Field("dev", description="Deployment environment.")
    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8000, description="HTTP port.")
    workers: int = Field(1, description="Number of HTTP worker processes (uvicorn).")
    log_level: str = Field("info", description="Log level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="'json': one JSON object per log line (ts, level, logger, message, request_id)."
    )
    public_url: str | None = Field(
        None,
        description="External base URL used in pagination links. Unset: the request's own URL when its Host "
        "is in MEMSERVER_ALLOWED_HOSTS, else links are relative (path and query only).",
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
        description="Host names (no port) trusted to build absolute pagination links without public_url; "
        '"*" trusts any (JSON list, e.g. ["api.example.com"]).',
    )
    database_url: SecretStr | None = Field(
        None,
        description="postgresql+asyncpg://... of a Postgres with pgvector. Unset = start the embedded Postgres.",
    )
    bootstrap: bool = Field(
        True, description="On first start with an empty database, create a default org, project and key."
    )
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    embedded: EmbeddedPostgresSettings = Field(default_factory=EmbeddedPostgresSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    documents: DocumentSettings = Field(default_factory=DocumentSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    graph: GraphSettings = Field(default_factory=GraphSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env == "prod":
            for name, secret in (
                ("llm.api_key", self.llm.api_key),
                ("embedder.api_key", self.embedder.api_key),
                ("graph.neo4j_password", self.graph.neo4j_password),
            ):
                if secret is not None and secret.get_secret_value().lower() in _PLACEHOLDER_SECRETS:
                    raise ValueError(f"MEMSERVER_{name.upper().replace('.', '__')} is a placeholder in prod")
            if self.database_url is not None:
                password = urlsplit(self.database_url.get_secret_value()).password or ""
                if password.lower() in _PLACEHOLDER_SECRETS | _DEFAULT_DB_PASSWORDS:
                    raise ValueError("MEMSERVER_DATABASE_URL has no password or a default one in prod")
            if self.uses_redis() and not urlsplit(self.redis.url).password:
                raise ValueError("MEMSERVER_REDIS__URL has no password in prod (redis://:password@host:6379/0)")
        return self

    def uses_redis(self) -> bool:
        """Whether anything is configured to go through Redis (Celery jobs, shared rate limits)."""
        return self.worker.runner == "celery" or self.ratelimit.backend == "redis"

    def async_database_url(self) -> str | None:
        """The configured database URL, normalised to the asyncpg driver."""
        if self.database_url is None:
            return None
        return normalize_async_url(self.database_url.get_secret_value())


def normalize_async_url(url: str) -> str:
    """Accept postgres://, postgresql:// and postgresql+psycopg:// forms and use asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


CLIENT_KEY_VARIABLES = ("MEM0_API_KEY", "MEMSERVER_API_KEY")


def client_api_key() -> str | None:
    """The API key a client command (`memserver mcp`) sends: MEM0_API_KEY, else MEMSERVER_API_KEY.

    Not a server setting: it is the caller's credential, named as Mem0's own clients name it."""
    for name in CLIENT_KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


@lru_cache
def get_settings() -> Settings:
    return Settings()


def env_example() -> str:
    """The text of .env.example: every setting, its description and default (`make env-example`)."""
    lines = [
        "# memserver configuration. Every variable has the MEMSERVER_ prefix; nested groups use '__'.",
        "# Values shown are the defaults; uncomment to change. A .env file in the working directory is read.",
        "",
    ]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, f in model.model_fields.items():
            env = f"{prefix}{name.upper()}"
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                lines.append(f"# --- {name} ---")
                walk(ann, env + "__")
                lines.append("")
                continue
            default = "" if f.default_factory is not None else f.default
            if default is None or isinstance(default, SecretStr):
                default = ""
            if isinstance(default, bool):
                default = str(default).lower()
            lines.append(f"# {f.description}")
            lines.append(f"# {env}={default}")

    walk(Settings, "MEMSERVER_")
    return "\n".join(lines).rstrip() + "\n"
