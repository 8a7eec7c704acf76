"""Database round trips of the Mem0 peer: a client-side psycopg 3 trace and pg_stat_statements snapshots."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class PsycopgTrace:
    """Counts what psycopg 3 sends to the server, for every connection of the process.

    * ``statements``: every SQL statement, including the implicit ``BEGIN`` psycopg issues when autocommit is
      off and ``COMMIT``/``ROLLBACK`` when a transaction is open.
    * ``round_trips``: client waits on the server. A ``BEGIN`` before ``execute`` is its own round trip;
      ``executemany`` runs in pipeline mode (libpq >= 14), so its ``BEGIN`` and all its rows are one round
      trip.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.installed = False

    def _add(self, key: str, statements: int, round_trips: int) -> None:
        with self._lock:
            self.counts[key] += 1
            self.counts["statements"] += statements
            self.counts["round_trips"] += round_trips

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def install(self) -> None:
        import psycopg
        from psycopg.pq import TransactionStatus

        trace = self
        cursor_cls, conn_cls = psycopg.Cursor, psycopg.Connection
        orig_execute, orig_executemany = cursor_cls.execute, cursor_cls.executemany
        orig_commit, orig_rollback = conn_cls.commit, conn_cls.rollback

        def needs_begin(conn: Any) -> bool:
            return not conn.autocommit and conn.pgconn.transaction_status == TransactionStatus.IDLE

        def execute(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            begin = needs_begin(self.connection)
            trace._add("execute", 1 + begin, 1 + begin)
            return orig_execute(self, query, params, *args, **kwargs)

        def executemany(self: Any, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
            params_seq = list(params_seq)
            begin = needs_begin(self.connection)
            trace._add("executemany", len(params_seq) + begin, 1)
            return orig_executemany(self, query, params_seq, *args, **kwargs)

        def commit(self: Any) -> None:
            if self.pgconn.transaction_status != TransactionStatus.IDLE:
                trace._add("commit", 1, 1)
            orig_commit(self)

        def rollback(self: Any) -> None:
            if self.pgconn.transaction_status != TransactionStatus.IDLE:
                trace._add("rollback", 1, 1)
            orig_rollback(self)

        cursor_cls.execute = execute
        cursor_cls.executemany = executemany
        conn_cls.commit = commit
        conn_cls.rollback = rollback
        self.installed = True


class ServerStats:
    """pg_stat_statements deltas (when the server preloads it), read on a separate autocommit connection.

    pg_stat_database transaction counters are not used: backends flush them lazily, so short deltas are wrong.
    """

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        try:
            self.conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            self.has_pgss = True
        except psycopg.Error:
            self.has_pgss = False

    def snapshot(self) -> dict[str, int]:
        if not self.has_pgss:
            return {}
        row = self.conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        return {"pgss_calls": int(row[0])}

    @staticmethod
    def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        if "pgss_calls" not in before:
            return {}
        # minus the one statement of the snapshot that opened the window
        return {"pgss_calls": after["pgss_calls"] - before["pgss_calls"] - 1}


def per_op(trace_delta: Counter[str], server_delta: dict[str, int] | None, ops: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ops": ops,
        "client_statements_per_op": round(trace_delta["statements"] / ops, 3),
        "client_round_trips_per_op": round(trace_delta["round_trips"] / ops, 3),
        "client_calls": {k: v for k, v in sorted(trace_delta.items()) if k not in ("statements", "round_trips")},
    }
    if server_delta and "pgss_calls" in server_delta:
        out["server_statements_per_op_pg_stat_statements"] = round(server_delta["pgss_calls"] / ops, 3)
    return out
