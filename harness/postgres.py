"""The embedded Postgres (pgvector) of one test session or benchmark run, in a throwaway directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from harness.server import free_port
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage import migrate

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2, the local embedder


def run_dir(prefix: str, base: Path | None = None) -> Path:
    """A fresh directory the unprivileged Postgres OS user can enter: outside /root and pytest's 0700 temp
    tree (under `base`, default /tmp), mode 0755."""
    base = base or Path("/tmp")
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(path, 0o755)
    return path


class PostgresRun:
    """A run directory holding one embedded Postgres (and whatever else the run writes, such as server logs).

    `with PostgresRun("memserver-x-") as run:` starts Postgres on a free port; leaving the block stops it and
    removes the directory unless `keep`."""

    def __init__(
        self,
        prefix: str,
        *,
        base: Path | None = None,
        fast: bool = False,
        extra_conf: list[str] | None = None,
        keep: bool = False,
    ):
        self.workdir = run_dir(prefix, base)
        self.pg = EmbeddedPostgres(self.workdir / "pg", port=free_port(), fast=fast, extra_conf=extra_conf)
        self.keep = keep

    def __enter__(self) -> PostgresRun:
        try:
            self.pg.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop Postgres and remove the run directory (unless `keep`)."""
        try:
            self.pg.stop()
        finally:
            if not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def migrate(self) -> str:
        """Bring memserver's database to the current schema; returns its URL."""
        url = self.pg.url()
        migrate.upgrade(url, EMBEDDING_DIM)
        return url


def plain_url(url: str) -> str:
    """The asyncpg/libpq form of a SQLAlchemy `postgresql+asyncpg://` URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
