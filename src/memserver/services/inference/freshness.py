"""The apply step's first check: the memories the model decided on are still as it saw them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from memserver.domain.scope import ENTITY_FIELDS, Scope
from memserver.pipeline.types import Candidate, Decision, Speaker
from memserver.storage.db import Connection
from memserver.storage.repositories.memories import MemoryRepository


class Stale(Exception):
    """A memory the model decided on changed between load and apply."""


async def check_fresh(
    conn: Connection,
    project_id: uuid.UUID,
    decisions: Sequence[Decision],
    shown: Mapping[uuid.UUID, Candidate],
    scopes: Mapping[Speaker, Scope],
) -> None:
    """Lock the memories the model decided on; any that changed or vanished since it saw them -> Stale.

    Every target was shown (first prompt or follow-up) and is of its speaker's scope (pipeline.reconcile);
    a target that is not is never written."""
    targets = {d.target_id: d.speaker for d in decisions if d.op in ("UPDATE", "DELETE") and d.target_id is not None}
    if not targets:
        return
    rows = {r.id: r for r in await MemoryRepository(conn).get_for_update(project_id, list(targets))}
    for mid, speaker in targets.items():
        row = rows.get(mid)
        seen = shown.get(mid)
        if row is None or seen is None or row.memory != seen.text or row.immutable:
            raise Stale(str(mid))
        if Scope(**{c: getattr(row, c) for c in ENTITY_FIELDS}) != scopes[speaker]:
            raise RuntimeError(f"add decided on memory {mid} of another scope than its speaker's")
