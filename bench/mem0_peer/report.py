"""The peer's table on stdout."""

from __future__ import annotations

from typing import Any


def _db_cells(db: dict[str, Any] | None) -> list[Any]:
    if db is None:
        return ["not measured", "not measured"]
    return [db["client_statements_per_op"], db["client_round_trips_per_op"]]


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def print_table(result: dict[str, Any]) -> None:
    server = result["server"]
    print()
    print(f"Mem0 OSS {result['versions']['mem0ai']} peer (pgvector {server['pgvector']}, MiniLM, infer=False)")
    print()
    print(
        _row(
            [
                "phase",
                "conc",
                "ops",
                "ops/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "DB stmts/op",
                "DB RTs/op",
                "notes",
            ]
        )
    )
    print(_row(["---"] * 10))
    for r in result["ingest"]:
        db = r["db"]
        note = "all stored" if r["all_stored"] else f"errors={r['errors']} bad={r['bad_results']}"
        cells = ["add infer=False", r["concurrency"], r["adds"], r["adds_per_s"], r["p50_ms"], r["p95_ms"]]
        cells += [r["p99_ms"], *_db_cells(db), note]
        print(_row(cells))
    for block in result["search"].values():
        for r in block["runs"]:
            db = r["db"]
            note = f"mean hits {r['mean_hits']}, <{r['top_k']}: {r['searches_with_fewer_than_top_k_hits']}"
            if r["errors"]:
                note += f", errors={r['errors']}"
            cells = [f"search @{block['rows']}", r["concurrency"], r["searches"], r["searches_per_s"]]
            cells += [r["p50_ms"], r["p95_ms"], r["p99_ms"], *_db_cells(db), note]
            print(_row(cells))
    print()
    top_k = result["params"]["top_k"]
    for block in result["search"].values():
        rc = block.get("vector_stage_recall")
        if rc and rc.get("checked"):
            print(
                f"vector stage @{block['rows']}: {rc['mean_candidates_returned']} of "
                f"{rc['candidates_requested']} candidates returned, recall@{top_k} vs exact scan = "
                f"{rc[f'recall_at_{top_k}_vs_exact']} ({rc['checked']} queries)"
            )
    print(f"thread safety: {result['thread_safety']}")
    print(f"LLM calls during the run: {result['llm_calls']}")


NOTES = [
    "Memory.add(infer=False) per message: 1 embedding (sentence-transformers, torch CPU), 1 PGVector.insert "
    "(BEGIN + INSERT + COMMIT on a pooled psycopg 3 connection), 1 SQLite history insert (local file).",
    "Memory.search: query embedding, PGVector.search (HNSW, ORDER BY distance LIMIT max(4*top_k, 60), user "
    "filter as payload->>'user_id' = %s) and PGVector.keyword_search (GIN full-text on text_lemmatized), "
    "each in its own transaction. mem0's spaCy lemmatizer and entity extraction are off unless mem0ai[nlp] "
    "is installed (it is not here), so text_lemmatized is the raw text and there is no entity boost.",
    "Bulk rows are written with mem0's own PGVector.insert and the payload Memory.add writes (user_id, role, "
    "data, hash, created_at, updated_at, text_lemmatized = mem0's lemmatize_for_bm25). ANALYZE runs after "
    "each load.",
]
