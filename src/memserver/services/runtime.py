"""The resources one process builds once (in the app's lifespan or a worker's start) and every request uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from memserver.config import Settings
from memserver.providers.registry import Providers
from memserver.services.health import ReadinessState
from memserver.services.jobs import JobQueue
from memserver.services.key_cache import KeyCache
from memserver.services.key_slots import KeySlots
from memserver.services.ratelimit import RateLimiter
from memserver.services.usage import UsageMeter
from memserver.storage.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    providers: Providers
    key_cache: KeyCache
    queue: JobQueue
    limiter: RateLimiter
    summary_slots: KeySlots  # a READER key's summaries running at once (services.documents.summarize)
    readiness: ReadinessState = field(default_factory=ReadinessState)
    usage: UsageMeter = field(default_factory=UsageMeter)  # searches and LLM use outside jobs, until flushed
