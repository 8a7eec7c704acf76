"""Inference cost (benchmarks.md §1b, issue 9): what an `infer=true` add costs memserver, LLM time excluded,
against the open-source Mem0 library doing the same adds in the same run.

    .venv/bin/python -m bench.inference_cost              # 100 adds per side, about 2-4 minutes on 2 cores
    .venv/bin/python -m bench.inference_cost --n 20 --no-peer   # memserver only (no torch, no Mem0)

Setup, all private to the run: an embedded Postgres with `pg_stat_statements` holding two databases
(`memserver`, migrated; `mem0bench`, pgvector); the scripted OpenAI-compatible server
(`tests/fakes/openai_server.py`, its own process, `--echo --mem0-echo --keep-alive`) as the LLM of both systems;
`memserver serve` with its local all-MiniLM-L6-v2 (embedding cache off) and Mem0 OSS `Memory` (mem0ai 2.2.1,
pgvector, the same MiniLM weights through sentence-transformers) in its own virtualenv
(`bench/mem0_peer_env.sh`).

Workload: the first `--n` two-message exchanges of LoCoMo conv-26, session by session (turns 2k and 2k+1 of
a session: the first as `user`, the second as `assistant`; content "<speaker>: <text>"), all for one user, in
order, one add at a time. memserver: `POST /v1/memories/` with `infer: true, async_mode: false` (the add is
processed within the request), the session date as `timestamp` (Mem0 OSS refuses `timestamp`).
Mem0: `Memory.add(messages, user_id=..., metadata=..., infer=True)`. The fake answers each system's own
extraction prompt in its own format with one fact per user message, so both store the same texts.

Per add, the same rule on both sides:
- own time: wall time of the add minus the fake's server-side handling time of the chat requests it made;
- database statements: `pg_stat_statements` calls in that system's database (BEGIN/COMMIT included), read
  from the `postgres` database; Mem0 also gets its client-side psycopg round trips and its SQLite calls;
- LLM calls, prompt and completion tokens: the fake's `/v1/_stats` (`usage`: whitespace words x 1.3);
- the share of prompt tokens in a prefix already sent (the fake's `--prefix-cache`: what vLLM and llama.cpp
  reuse, and the same under OpenAI's 1,024-token rule); `--arrival-times` gives each add its own time;
- CPU ms of the system's own process (memserver's API process; the Mem0 peer process), Postgres excluded.

Modules: `common` (standard library only: the workload file, the fake's stats, summaries; imported by both
sides), `run` (the driver and memserver's side), `mem0_side` (the peer, run in its virtualenv), `backlog`
(`--backlog 8 --scopes 4`: queued adds of one scope coalesced into one call, against one at a time).
"""
