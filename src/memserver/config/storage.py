"""Where data lives: the database, the embedded Postgres, Redis."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field


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


class RedisSettings(BaseModel):
    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL used by the Celery worker runner.")
