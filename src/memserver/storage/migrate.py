"""Apply alembic migrations from code and check the schema against the configured embedder."""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


class SchemaMismatchError(RuntimeError):
    """The database schema does not fit the configured embedder."""


def _script_location() -> Path:
    pkg = Path(__file__).resolve().parents[1]
    for candidate in (pkg / "_alembic", pkg.parents[1] / "alembic"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("alembic migrations not found next to the memserver package")


def alembic_config(url: str, embedding_dim: int) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_script_location()))
    cfg.attributes["url"] = url
    cfg.cmd_opts = argparse.Namespace(x=[f"embedding_dim={embedding_dim}"])
    return cfg


def upgrade(url: str, embedding_dim: int) -> None:
    """Bring the database to the latest revision (idempotent). Runs its own event loop."""
    command.upgrade(alembic_config(url, embedding_dim), "head")


async def schema_embedding_dim(conn: AsyncConnection) -> int | None:
    """The vector dimension of memories.embedding as created, or None before migrations."""
    row = (
        await conn.execute(
            text(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass('memories') AND attname = 'embedding'"
            )
        )
    ).first()
    return None if row is None else int(row[0])


async def check_embedding_dim(conn: AsyncConnection, configured: int) -> None:
    dim = await schema_embedding_dim(conn)
    if dim is None:
        raise SchemaMismatchError("the database has no memserver schema; run `memserver migrate` first")
    if dim != configured:
        raise SchemaMismatchError(
            f"the database stores {dim}-dimensional embeddings but the configured embedder produces "
            f"{configured} dimensions (MEMSERVER_EMBEDDER__DIM). Use an embedder of dimension {dim}, "
            "or point MEMSERVER_DATABASE_URL / MEMSERVER_EMBEDDED__DATA_DIR at a new database."
        )
