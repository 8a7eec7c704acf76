"""Jobs: the kinds of asynchronous work and their statuses (the `events` table holds them)."""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    """What a job does; stored as the event's `event_type`."""

    ADD = "ADD"
    GRAPH_SYNC = "GRAPH_SYNC"  # mirror a scope's graph to Neo4j (services.graph.sync_job)


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
