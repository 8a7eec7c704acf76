"""Engine and transaction helpers. No module-level engines: the app lifespan builds one."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from pgvector.asyncpg import register_vector
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import UserDefinedType

from memserver.config import DatabaseSettings
from memserver.errors import ServiceUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)
# deadlock_detected, serialization_failure: the transaction did nothing and may simply run again
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})

# The connection services hold and hand to repositories (services may not import SQLAlchemy themselves).
Connection = AsyncConnection


class Database:
    """One engine per process; `transaction()` for multi-statement writes, `connect()` otherwise."""

    def __init__(
        self,
        url: str,
        settings: DatabaseSettings | None = None,
        *,
        application_name: str = "memserver",
        hnsw_ef_search: int = 100,
    ):
        s = settings or DatabaseSettings()
        server_settings = {
            # JIT compilation costs tens of ms on short OLTP queries and never pays off here.
            "jit": "off",
            "statement_timeout": str(s.statement_timeout_ms),
            "application_name": application_name,
            "timezone": "UTC",
            # Filtered HNSW scans keep walking the graph until the LIMIT is filled
            # (pgvector >= 0.8), instead of returning the few neighbours that pass the filter.
            "hnsw.iterative_scan": "relaxed_order",
            "hnsw.ef_search": str(hnsw_ef_search),
        }

        def engine(**extra_settings: str) -> AsyncEngine:
            built = create_async_engine(
                url,
                pool_size=s.pool_size,
                max_overflow=s.max_overflow,
                pool_recycle=1800,
                echo=s.echo,
                connect_args={"server_settings": {**server_settings, **extra_settings}},
            )
            event.listen(built.sync_engine, "connect", _register_vector_codec)
            return built

        self.engine: AsyncEngine = engine()
        # Search statements choose their path (exact scan or indexes) inside the statement from the
        # scope's size, so one generic plan per prepared statement serves every value. Left to
        # itself ("auto"), Postgres re-plans the hybrid statement on every execution: 1-1.5 ms of
        # planning for a 2 ms query. Other statements keep per-value plans. Sized like the main
        # pool: overflow connections are closed on release, and reconnecting under load costs more
        # than the planning saved.
        self._generic_engine: AsyncEngine = engine(plan_cache_mode="force_generic_plan")
        # Single-statement reads and writes run without BEGIN/COMMIT round trips:
        # each statement is atomic on its own.
        self._autocommit: AsyncEngine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._generic: AsyncEngine = self._generic_engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self, *, generic_plans: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection in autocommit mode, for reads and single-statement writes.

        generic_plans: from a pool whose prepared statements are planned once (search).
        """
        async with (self._generic if generic_plans else self._autocommit).connect() as conn:
            yield conn

    async def ping(self) -> None:
        """One round trip to the database (health checks)."""
        async with self.connect() as conn:
            await conn.execute(select(1))

    def pool_status(self) -> dict[str, dict[str, int]]:
        """Connections per pool (main, search) and state, for metrics."""
        out: dict[str, dict[str, int]] = {}
        for name, engine in (("main", self.engine), ("search", self._generic_engine)):
            pool: Any = engine.pool
            out[name] = {
                "size": int(pool.size()),
                "checked_out": int(pool.checkedout()),
                "idle": int(pool.checkedin()),
                "overflow": max(0, int(pool.overflow())),
            }
        return out

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self._generic_engine.dispose()


def _register_vector_codec(dbapi_connection: Any, connection_record: Any) -> None:
    """Send and receive pgvector values in binary: 384 floats as text cost ~170 us to format, binary ~2 us."""
    dbapi_connection.run_async(register_vector)


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: Postgres rolled the transaction back; running it again is safe."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


async def retry_transient(fn: Callable[[], Awaitable[T]], *, attempts: int = 4) -> T:
    """Run a whole transaction (or single statement) again after a deadlock or serialization failure,
    a bounded number of times with a short random back-off; then answer 503 rather than 500."""
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except DBAPIError as exc:
            if not is_retryable(exc):
                raise
            log.warning("transient database conflict (attempt %d/%d): %s", attempt, attempts, exc.orig)
            if attempt == attempts:
                raise ServiceUnavailable("The database is busy with conflicting writes; retry the request.") from exc
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


class _Passthrough(UserDefinedType[Any]):
    """A pgvector parameter passed to the driver untouched: the binary codec above encodes it
    (SQLAlchemy's own Vector type would format it as text first)."""

    cache_ok = True

    def __init__(self, spec: str):
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


VECTOR_PARAM = _Passthrough("vector")
VECTOR_ARRAY_PARAM = _Passthrough("vector[]")
