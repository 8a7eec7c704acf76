"""What every repository is: a class bound to one connection, holding all the SQL of its tables.

A repository never commits: the service that made the connection (`Database.connect()` or
`Database.transaction()`) decides the transaction, so several repositories share one.

**`text()` or Core.** Both appear, each for a reason; no statement is written one way out of habit.

- Core (the tables of `storage/models.py`) where a statement is *composed*: a compiled filter
  (`storage/filters.py`), the webhook outbox CTE joined to the write that causes it, column lists that
  must follow the models (memories, history, webhooks, transfer), vectors sent on the binary codec.
- `text()` where the statement is *fixed* and reads best as the SQL Postgres runs: catalog reads
  (`pg_stats`), recursive CTEs (`memories.linked_ids`, the graph's named nodes), the job claims and
  leases (`FOR UPDATE SKIP LOCKED`, LISTEN/NOTIFY), tenancy CRUD, counters, the graph's temporal
  statements.
- A `text()` statement with no variable part is a module-level constant (`graph_writes._KNOWN`).
- An f-string splices only what its own module fixes: column names from a closed set, bind-parameter
  names, constants (a job status, a limit) and fragments built from them. A value a caller passed is
  always a bound parameter, never spliced.
- One statement does not mix the two, except for a literal fragment inside Core
  (`text("'[]'::jsonb")` in `webhooks.categorize_outbox_insert`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


class Repository:
    """The base of every repository: the connection its statements run on."""

    __slots__ = ("conn",)

    def __init__(self, conn: AsyncConnection):
        self.conn = conn
