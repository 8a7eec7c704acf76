"""Speed benchmark (benchmarks.md §2): memserver against the open-source Mem0 library, in one run.

What it measures, on one private Postgres 18 + pgvector (the embedded wheel, pg_stat_statements loaded) that
holds two databases, one per system:

1. **Verbatim ingest** through HTTP: ``POST /v3/memories/add/`` with one user message and ``infer: false``,
   spread over ``--ingest-users`` users, at each ``--concurrency`` (default 1 and 8), with a lean asyncio
   HTTP/1.1 keep-alive client (raw sockets, Content-Length framing) so that the client's own CPU stays small
   on a 2-core machine; the same adds again through the official Python SDK (``mem0ai`` 2.2.1
   ``MemoryClient``, threads, in its own virtualenv and process). adds/s, p50/p95/p99 per add.
2. **Search latency** with the project loaded to each of ``--sizes`` memories (``--per-user`` memories per
   user): ``POST /v3/memories/search/`` ``{"query", "filters": {"user_id"}, "top_k": 10}``, default hybrid
   retrieval and ``"retrieval": "semantic"`` (dense only), at each ``--search-concurrency``: p50/p95/p99 ms.
   The load is a direct SQL bulk insert of the rows an add writes (memories with the embeddings of
   memserver's own local embedder, their ADD history and the user entities), then ``ANALYZE``.
3. **Database cost** per add and per search: pg_stat_statements deltas of memserver's database (reset before
   each measured phase, so the benchmark's bulk load is excluded): statements per operation and planning +
   execution ms per operation, statement by statement. CPU seconds of the client, the API process and
   Postgres per operation.
4. **Memory**: RSS of the API process right after startup (idle) and its peak (VmHWM) at the end.
5. **The Mem0 peer** in the same run: ``bench.mem0_peer`` in its own virtualenv against the second
   database, with the identical workload (the texts and queries are written to a file and replayed; the
   ingest texts, users, bulk-load users and (query, user) search pairs are the same on both sides), once out
   of the box and once with ``hnsw.iterative_scan=relaxed_order``. Ratios: memserver adds/s / Mem0 adds/s
   and Mem0 search p95 / memserver search p95.

    .venv/bin/python -m bench.speed                 # defaults: about 8 minutes on 2 cores (< 20)
    .venv/bin/python -m bench.speed --quick         # smoke size, under 2 minutes (CI)
    .venv/bin/python -m bench.speed --repeat 3      # medians of 3 complete runs
    .venv/bin/python -m bench.speed --no-peer --sizes 10000 --profile bench/results/profile

(from the repository root). Modules, in the order a run uses them: ``config`` (sizes, targets, arguments),
``stack`` (Postgres and server), ``workload`` (bodies, bulk load), ``http`` (the load client), ``meters``
(CPU, RSS, pg_stat_statements, py-spy), ``phases`` (memserver's ingest and search), ``sdk``, ``peer`` (the
Mem0 side), ``report`` (summary, ratios, targets, table), ``run`` (one run and ``main``).

memserver runs with its embedding LRU cache disabled (``MEMSERVER_EMBEDDER__CACHE_SIZE=0``), because the
query set repeats (200 searches use ~70 distinct questions) and Mem0 has no such cache;
``--embedder-cache`` keeps memserver's default (4096 entries).
"""
