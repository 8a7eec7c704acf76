"""Jobs: the kinds of asynchronous work and their statuses (the `events` table holds them)."""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    """What a job does; stored as the event's `event_type`."""

    ADD = "ADD"
    EXPORT = "EXPORT"  # fill a JSON schema from memories (services.documents)
    PROFILE = "PROFILE"  # generate entity profiles (services.profiles)
    WEBHOOK = "WEBHOOK"  # one delivery of a memory change to one webhook (written as an outbox)
    GRAPH_SYNC = "GRAPH_SYNC"  # mirror a scope's graph to Neo4j (services.graph.sync_job)
    DREAM = "DREAM"  # distil one user's memories into pattern memories (services.dream)


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
