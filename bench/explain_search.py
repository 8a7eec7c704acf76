"""Print EXPLAIN (ANALYZE) of memserver's dense and hybrid search statements for one scope.

    python -m bench.explain_search --database-url postgresql://... --project <uuid> \
        --filters '{"user_id": "alice"}' --query "where does alice live?" [--exact-limit 20000]

It builds exactly the statements the server runs (storage/repositories/search.py) and runs them
under EXPLAIN through asyncpg with the same parameters, so index use and per-stage timings can be
read off the plan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from memserver.config import normalize_async_url
from memserver.domain.filters import parse_filters
from memserver.pipeline import query as query_understanding
from memserver.providers.embedder.local import LocalEmbedder
from memserver.storage.db import Database
from memserver.storage.filters import compile_filter
from memserver.storage.repositories.search import SearchRepository

ROOT = Path(__file__).resolve().parents[1]


class _Capture:
    """Stands in for a connection: keeps the statement instead of running it."""

    stmt: Any = None
    params: ClassVar[dict[str, Any]] = {}

    async def execute(self, stmt: Any, params: dict[str, Any] | None = None) -> Any:
        _Capture.stmt = stmt
        _Capture.params = params or {}

        class _Result:
            def all(self) -> list[Any]:
                return []

            def one(self) -> tuple[Any, ...]:
                return (None,) * 9

        return _Result()


async def explain(db: Database, stmt: Any, values: dict[str, Any]) -> str:
    dialect = asyncpg_dialect.dialect()
    compiled = stmt.compile(dialect=dialect)
    processors = compiled._bind_processors
    params = []
    for name in compiled.positiontup:
        value = values[name] if name in values else compiled.params[name]
        if name in processors and processors[name] is not None:
            value = processors[name](value)
        params.append(value)
    async with db.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        rows = await driver.fetch("EXPLAIN (ANALYZE, BUFFERS, SUMMARY) " + str(compiled), *params)
    return "\n".join(r[0] for r in rows)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--project", required=True, type=uuid.UUID)
    p.add_argument("--filters", required=True, help="a Mem0 filters object, as JSON")
    p.add_argument("--query", required=True)
    p.add_argument("--exact-limit", type=int, default=20_000)
    args = p.parse_args()
    embedder = LocalEmbedder(ROOT / ".cache" / "models")
    vector = embedder.embed_sync([args.query])[0]
    where = compile_filter(parse_filters(json.loads(args.filters)))
    h = query_understanding.hints(args.query)
    db = Database(normalize_async_url(args.database_url))
    try:
        repo = SearchRepository(_Capture())  # type: ignore[arg-type]
        await repo.dense(args.project, where, vector, limit=10, exact_limit=args.exact_limit)
        print("=== dense (retrieval=semantic) ===")
        print(await explain(db, _Capture.stmt, _Capture.params))
        await repo.hybrid_evidence(args.project, where, vector, args.query, h.names, exact_limit=args.exact_limit)
        print("\n=== hybrid (default): the evidence statement (the winners' rows are then read by primary key) ===")
        print(await explain(db, _Capture.stmt, _Capture.params))
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
