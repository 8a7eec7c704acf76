"""The Dream settings of a project (Mem0's dream config) and a queued synthesis run."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from memserver.api.kit.wire import Message, Out
from memserver.api.orgs.responses import SettingNote  # the notes of a project settings PATCH, same shape


class SynthesisSchedule(Out):
    """How this server runs Synthesis (MEMSERVER_DREAM__*)."""

    cadence_seconds: float = Field(description="Each user is synthesized at most once per this many seconds.")
    min_memories: int = Field(description="Eligible memories a user needs before a run considers them.")
    max_memories_per_run: int = Field(description="Newest eligible memories one run reads.")
    max_patterns_per_run: int = Field(description="Most patterns one run adds or updates.")
    scheduler: bool = Field(description="Whether scheduled runs are on (runs queued by hand run either way).")


class DreamConfig(Out):
    """`reflection_enabled` as the Platform names it; the rest describes what memserver does. Other options a
    client sends are kept and returned as given, without effect (said in `notes` when set)."""

    model_config = ConfigDict(extra="allow")

    reflection_enabled: bool = Field(description="Synthesis: pattern memories written on a schedule (opt-in).")
    enabled_at: datetime | None = Field(description="When Synthesis was turned on: the forward boundary.")
    supersede: bool = Field(description="Always on: a contradicted memory is kept as superseded at add time.")
    merge: bool = Field(description="Always on: an exact duplicate is a NOOP at add time (no merged records).")
    synthesis: SynthesisSchedule
    entitlements: dict[str, bool]
    notes: list[SettingNote] | None = Field(None, description="PATCH: the options kept without effect.")


class DreamRunQueued(Message):
    event_id: str = Field(description="The DREAM job's event (GET /v1/event/{event_id}/).")
    status: str
    user_id: str
