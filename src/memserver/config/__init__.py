"""Settings: the one place that reads the environment (prefix MEMSERVER_, nested with __).

Each group of settings lives with its neighbours (`storage`, `models`, `serving`); `Settings` gathers them."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from memserver.config.fields import Networks
from memserver.config.models import (
    DocumentSettings,
    DreamSettings,
    EmbedderSettings,
    LLMSettings,
    RerankSettings,
)
from memserver.config.serving import (
    AuthSettings,
    ConsoleSettings,
    GraphSettings,
    LimitsSettings,
    McpSettings,
    RateLimitSettings,
    SearchSettings,
    UsageSettings,
    WebhookSettings,
    WorkerSettings,
)
from memserver.config.storage import DatabaseSettings, EmbeddedPostgresSettings, RedisSettings

__all__ = [
    "CLIENT_KEY_VARIABLES",
    "AuthSettings",
    "ConsoleSettings",
    "DatabaseSettings",
    "DocumentSettings",
    "DreamSettings",
    "EmbeddedPostgresSettings",
    "EmbedderSettings",
    "GraphSettings",
    "LLMSettings",
    "LimitsSettings",
    "McpSettings",
    "Networks",
    "RateLimitSettings",
    "RedisSettings",
    "RerankSettings",
    "SearchSettings",
    "Settings",
    "UsageSettings",
    "WebhookSettings",
    "WorkerSettings",
    "client_api_key",
    "env_example",
    "get_settings",
    "normalize_async_url",
]

_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "sk-placeholder", ""}
_DEFAULT_DB_PASSWORDS = {"memserver", "postgres", "password"}


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
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    graph: GraphSettings = Field(default_factory=GraphSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    dream: DreamSettings = Field(default_factory=DreamSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env == "prod":
            for name, secret in (
                ("llm.api_key", self.llm.api_key),
                ("embedder.api_key", self.embedder.api_key),
                ("graph.neo4j_password", self.graph.neo4j_password),
                ("rerank.api_key", self.rerank.api_key),
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

    @model_validator(mode="after")
    def _rerank_has_its_llm(self) -> Settings:
        if self.rerank.provider == "llm" and not self.llm.configured:
            raise ValueError(
                "MEMSERVER_RERANK__PROVIDER=llm needs an LLM: set MEMSERVER_LLM__BASE_URL or MEMSERVER_LLM__API_KEY"
            )
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
