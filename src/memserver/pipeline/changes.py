"""From decisions to the changes each add writes (pure, no I/O).

An inferred run decides for one add, or for several adds of one scope at once (coalesced: their messages
numbered across all of them in one prompt). Each decision belongs to one add (`attribute`): the add of its
highest source message, since a fact is complete once its last message has been said. Each add then writes
its own `ChangeSet`, with its own event in every memory's provenance and its own message numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memserver.domain.changes import UNSET, ChangeSet, MemoryEdit, MemoryRemoval, NewMemory, Noop, Outcome
from memserver.domain.dates import Period
from memserver.domain.scope import Scope
from memserver.pipeline import time_expressions
from memserver.pipeline.messages import text_hash
from memserver.pipeline.prompts import extract
from memserver.pipeline.types import Decision, Speaker


@dataclass(frozen=True)
class Share:
    """One add's part of a run: its event, where its messages start in the run's numbering, and its decisions
    (their positions in the run's decision list, in order); when its messages were observed, and in which time
    zone (what its facts' relative dates mean)."""

    event_id: uuid.UUID
    first_message: int
    decisions: list[int]
    observed_at: datetime
    zone: tzinfo | None = None


def attribute(decisions: Sequence[Decision], add_of: Mapping[int, int], adds: int) -> list[int]:
    """Decision -> the add (0..adds-1) it belongs to: the add of its highest source message; a decision without
    a source (a DELETE or NOOP may have none) goes to the last add. A DELETE superseded by a new fact goes with
    that fact's add, so the superseding memory is written by the same add."""
    owner = [max((add_of[i] for i in d.sources if i in add_of), default=adds - 1) for d in decisions]
    for i, d in enumerate(decisions):
        if d.op == "DELETE" and (by := superseder(d, decisions)) is not None:
            owner[i] = owner[by]
    return owner


def shares(
    decisions: Sequence[Decision],
    owner: Sequence[int],
    events: Sequence[uuid.UUID],
    first_messages: Sequence[int],
    observed: Sequence[tuple[datetime, tzinfo | None]],
) -> list[Share]:
    """The run's decisions split per add (one Share per add, in the adds' order)."""
    return [
        Share(event_id=e, first_message=f, decisions=[i for i, o in enumerate(owner) if o == k], observed_at=t, zone=z)
        for k, (e, f, (t, z)) in enumerate(zip(events, first_messages, observed, strict=True))
    ]


def change_set(
    share: Share,
    decisions: Sequence[Decision],
    scopes: Mapping[Speaker, Scope],
    vectors: Mapping[str, NDArray[np.float32]],
    provenance: Mapping[uuid.UUID, Any],
) -> ChangeSet:
    """What one add writes: its decisions as memory changes. A change's `index` is the decision's position
    within the add (what `memory_of` and a superseded memory's `replaced_by_index` refer to); provenance names
    the add's event and its own message numbers."""
    local = {g: j for j, g in enumerate(share.decisions)}
    changes = ChangeSet()
    for j, g in enumerate(share.decisions):
        d = decisions[g]
        source = {
            "event_id": str(share.event_id),
            "message_indices": sorted(i - share.first_message for i in d.sources),
        }
        period = event_period(d, share.observed_at, share.zone) if d.op in ("ADD", "UPDATE") else None
        if d.op == "ADD":
            changes.adds.append(
                NewMemory(
                    text=d.text,
                    hash=text_hash(d.text),
                    scope=scopes[d.speaker],
                    embedding=vectors[d.text],
                    index=j,
                    role=d.speaker,
                    categories=d.categories or None,
                    provenance={"sources": [source]},
                    source="inferred",
                    event_start=period.start if period else None,
                    event_end=period.end if period else None,
                )
            )
        elif d.op == "UPDATE" and d.target_id is not None:
            previous = provenance.get(d.target_id) or {}
            sources = [*(previous.get("sources") or []), source] if isinstance(previous, dict) else [source]
            changes.edits.append(
                MemoryEdit(
                    memory_id=d.target_id,
                    text=d.text,
                    hash=text_hash(d.text),
                    embedding=vectors[d.text],
                    categories=d.categories or None,
                    provenance={"sources": sources},
                    event_period=period or UNSET,  # an update that names no time keeps the memory's period
                )
            )
        elif d.op == "DELETE" and d.target_id is not None:
            by = superseder(d, decisions)
            changes.removals.append(
                MemoryRemoval(memory_id=d.target_id, replaced_by_index=local.get(by) if by is not None else None)
            )
        elif d.op == "NOOP":
            changes.noops.append(Noop(memory_id=d.target_id, text=d.text, index=j))
    return changes


def event_period(d: Decision, observed_at: datetime, zone: tzinfo | None) -> Period | None:
    """The dates the model gave the fact, as local days of the add's zone; without them, the time the fact's own
    words name ("Ran a marathon on 2025-04-12"), read against when the messages were observed."""
    if d.event_start and d.event_end:
        first, after = extract.period_of(d.event_start)[0], extract.period_of(d.event_end)[1]
        local = zone or UTC
        return Period(*(datetime.combine(x, time(), tzinfo=local).astimezone(UTC) for x in (first, after)))
    found = time_expressions.event_period(d.text, observed_at, zone)
    return Period(*found) if found else None


def memory_of(share: Share, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> dict[int, uuid.UUID | None]:
    """Run decision index -> the memory it wrote (ADD, or the duplicate it met) or kept (UPDATE, NOOP), for
    the decisions of one add and the outcomes of its write."""
    added = {o.index: o.id for o in outcomes if o.index >= 0}
    return {
        g: added.get(j) if decisions[g].op == "ADD" else decisions[g].target_id for j, g in enumerate(share.decisions)
    }


def superseder(deleted: Decision, decisions: Sequence[Decision]) -> int | None:
    """A memory deleted because the same message states a new fact is superseded by that fact, not erased.

    ("I have been vegetarian since January" deletes "Loves steak" and adds "Is vegetarian": the old
    memory is kept as superseded, replaced_by the new one; "forget my address" adds nothing: deleted.)
    """
    for i, d in enumerate(decisions):
        if d.op == "ADD" and d.speaker == deleted.speaker and set(d.sources) & set(deleted.sources):
            return i
    return None
