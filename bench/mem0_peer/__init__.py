"""Mem0 OSS peer for the speed benchmark (benchmarks.md §2).

Drives the open-source Mem0 library (``mem0ai`` 2.2.1, ``mem0.Memory``) against a Postgres/pgvector database
with the all-MiniLM-L6-v2 embedder run by sentence-transformers, and measures:

1. verbatim ingest (``Memory.add(..., infer=False)``) at concurrency 1 and 8: adds/s, p50/p95/p99 per add;
2. search latency (``Memory.search(query, filters={"user_id": u}, top_k=10)``) with the collection loaded to
   each of ``--sizes`` memories (many users): p50/p95/p99 ms and searches/s;
3. database round trips and statements per add and per search (client-side psycopg trace, cross-checked with
   ``pg_stat_statements`` when the server has it loaded).

It needs its own virtualenv (torch + sentence-transformers + mem0ai): ``bash bench/mem0_peer_env.sh``
builds it and prints its python. Example::

    PY=$(bash bench/mem0_peer_env.sh)
    $PY -m bench.mem0_peer --database-url postgresql://postgres@127.0.0.1:55432/bench \\
        --n 2000 --sizes 10000,100000 --queries 200 --out .cache/bench/mem0-peer.json

Everything is deterministic for a given ``--seed``: the texts, the queries, the user ids and the memory ids
of the bulk load. ``--dump-texts FILE`` writes the texts and queries used, and ``--texts-file FILE`` reads
them back, so the memserver side of the benchmark can replay the identical workload:

* ingest at the k-th concurrency level (0-based, in ``--concurrency`` order) adds ``texts[k*N:(k+1)*N]``;
  text i goes to user ``ingest-c{c}-u{i % ingest_users:04d}``;
* the bulk load embeds the pool ``texts[len(concurrency)*N:][:pool]`` (cycled if the list is shorter) and
  row j of the bulk goes to user ``bulk-u{j // per_user:05d}`` with text ``pool[j % len(pool)]``;
* search i uses ``queries[i % len(queries)]`` for a user drawn (seeded) among the full bulk users; the JSON
  result lists every (query, user_id) pair under ``search.<size>.search_pairs``.

The workload helpers (``generate_texts``, ``generate_queries``, ``locomo_texts``) live in ``bench.workload``
(standard library only), shared with the memserver side. Modules: ``cli`` (arguments, the run from start to
JSON), ``store`` (Mem0 set up on pgvector, direct SQL), ``phases`` (ingest, bulk load, search, recall),
``dbstats`` (round-trip trace, pg_stat_statements), ``report`` (the table). Run it from the repository root.
"""
