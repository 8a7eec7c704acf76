"""What every command shares: output, the database (configured or embedded), migrations."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pydantic import SecretStr

from memserver.config import Settings
from memserver.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError
from memserver.storage import migrate
from memserver.storage.db import Database

T = TypeVar("T")
log = logging.getLogger("memserver")


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextmanager
def database(settings: Settings, *, fast: bool = False) -> Iterator[Settings]:
    """Settings with a database URL: the configured one, or the embedded Postgres (started if needed)."""
    if settings.database_url is not None:
        yield settings
        return
    try:
        pg = EmbeddedPostgres(
            settings.embedded.data_dir,
            port=settings.embedded.port,
            os_user=settings.embedded.os_user,
            fast=fast,
        )
        pg.start()
    except EmbeddedPostgresError as exc:
        raise SystemExit(f"memserver: {exc}") from None
    try:
        yield settings.model_copy(update={"database_url": SecretStr(pg.url())})
    finally:
        pg.stop()


def run_db(settings: Settings, fn: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        url = settings.async_database_url()
        assert url is not None
        db = Database(url, settings.db, application_name="memserver-cli")
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def migrate_schema(settings: Settings) -> None:
    """Apply migrations, then refuse an embedder whose dimension does not fit the stored vectors."""
    url = settings.async_database_url()
    assert url is not None
    migrate.upgrade(url, settings.embedder.dim)

    async def check(db: Database) -> None:
        async with db.connect() as conn:
            await migrate.check_embedding_dim(conn, settings.embedder.dim)

    try:
        run_db(settings, check)
    except migrate.SchemaMismatchError as exc:
        raise SystemExit(f"memserver: {exc}") from None
