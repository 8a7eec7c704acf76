"""The stored memories an inferred add shows the model: the first prompt's, and the follow-up lookup's.

Every memory shown is tagged with the speaker whose scope holds it (`Candidate.owner`), so the pipeline can
keep each fact to its own speaker's memories, and carries its provenance, so an UPDATE keeps the memory's
earlier sources. Memories of the follow-up lookup are returned the same way as the first prompt's: the add
checks both for changes before it applies (`inference.freshness`) and keeps both provenances.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memserver.domain.scope import ENTITY_FIELDS, Scope
from memserver.pipeline import coverage
from memserver.pipeline.prompts import extract
from memserver.pipeline.prompts import followup as followup_prompt
from memserver.pipeline.query import names as query_names
from memserver.pipeline.types import Candidate, Decision, ExtractionRequest, InMessage, Speaker
from memserver.providers.registry import Providers
from memserver.storage.db import Database
from memserver.storage.repositories.add_candidates import CandidateRepository
from memserver.storage.repositories.memories import MemoryRepository

CANDIDATES = 10  # memories shown to the model: the nearest to the new messages (their mean embedding)
# ... plus each message's own nearest, so a fact's nearest memories are usually shown without asking
# (facts come from single messages; the exchange as a whole can sit far from some of them). Messages
# beyond PER_MESSAGE_LIMIT are searched for as one text, and their facts checked after the reply.
PER_MESSAGE = 3
PER_MESSAGE_LIMIT = 8
NAME_CANDIDATES = 5  # ... and the newest memories that mention a name the messages use
MAX_NAMES = 8
# A new fact whose nearest stored memory is at least this similar, and was not shown to the model,
# is reconciled in a second call. (all-MiniLM-L6-v2: restatements of one fact score ~0.75-0.95,
# unrelated facts of one person ~0.1-0.4.)
SECOND_CALL_SIMILARITY = 0.75

Shown = tuple[Candidate, Any]  # a memory shown to the model, and its provenance


@dataclass
class Loaded:
    """The memories shown to the model, and what they prove about the rest (pipeline.coverage)."""

    candidates: list[Shown]
    radii: dict[int, tuple[NDArray[np.float32], float]] = field(default_factory=dict)  # message -> (vector, radius)


def _shown(rows: list[Any], scopes: Mapping[Speaker, Scope], first_ref: int) -> list[Shown]:
    """The rows as candidates numbered from `first_ref`, each tagged with the speaker whose scope holds it."""
    owners = {scope: speaker for speaker, scope in scopes.items()}
    out: list[Shown] = []
    for r in rows:
        owner = owners.get(Scope(**{c: getattr(r, c) for c in ENTITY_FIELDS}))
        if owner is None:  # not in a scope of this add (the queries ask for exactly those): never shown
            continue
        candidate = Candidate(
            ref=first_ref + len(out),
            id=r.id,
            text=r.memory,
            created_at=r.created_at,
            immutable=r.immutable,
            owner=owner if len(owners) > 1 else None,
        )
        out.append((candidate, r.provenance))
    return out


async def load(
    db: Database,
    providers: Providers,
    project_id: uuid.UUID,
    scopes: Mapping[Speaker, Scope],
    messages: list[InMessage],
) -> Loaded:
    """The target scopes' memories the model must see, in one round trip: the CANDIDATES nearest to the
    exchange (the messages' mean embedding), each message's PER_MESSAGE nearest, and the newest
    NAME_CANDIDATES that mention a name the messages use (a vector can miss a person's memories)."""
    speaking = [m for m in messages if m.role in ("user", "assistant") and m.text.strip()]
    query = " ".join(m.text for m in speaking)[:2000].strip()
    if not query:
        return Loaded([])
    per_message = speaking if len(speaking) <= PER_MESSAGE_LIMIT else []
    if per_message:  # one embedding per message; their mean stands for the exchange
        vecs = await providers.embedder.embed([m.text for m in per_message])
        mean = vecs.mean(axis=0)
        vectors = np.vstack([mean / (float(np.linalg.norm(mean)) or 1.0), vecs]).astype(np.float32)
    else:
        vectors = await providers.embedder.embed([query])
    names = query_names(query)[:MAX_NAMES]
    async with db.connect(generic_plans=True) as conn:
        nearest, named, rows = await CandidateRepository(conn).add_candidates(
            project_id, list(dict.fromkeys(scopes.values())), vectors, names, k=CANDIDATES, k_names=NAME_CANDIDATES
        )
    shown = [mid for mid, _ in nearest[0]]
    for each in nearest[1:]:
        shown += [mid for mid, _ in each[:PER_MESSAGE]]
    shown = list(dict.fromkeys([*shown, *named]))
    radii: dict[int, tuple[NDArray[np.float32], float]] = {}
    for m, v, each in zip(per_message, vectors[1:], nearest[1:], strict=True):
        radii[m.index] = (v, coverage.radius([sim for _, sim in each[:PER_MESSAGE]], PER_MESSAGE))
    return Loaded(_shown([rows[mid] for mid in shown], scopes, 1), radii)


def unite(loads: list[Loaded]) -> Loaded:
    """The memories several adds of one scope bring up, shown once each (renumbered in order of appearance),
    with every add's coverage radii (their messages are numbered across the adds, so they do not collide)."""
    if len(loads) == 1:
        return loads[0]
    seen: set[uuid.UUID] = set()
    out: list[Shown] = []
    for each in loads:
        for c, provenance in each.candidates:
            if c.id not in seen:
                seen.add(c.id)
                out.append((c.model_copy(update={"ref": len(out) + 1}), provenance))
    return Loaded(out, {i: r for each in loads for i, r in each.radii.items()})


async def followup(
    db: Database,
    project_id: uuid.UUID,
    req: ExtractionRequest,
    reply: extract.ExtractionReply,
    decisions: list[Decision],
    vectors: dict[str, Any],
    scopes: Mapping[Speaker, Scope],
    radii: dict[int, tuple[NDArray[np.float32], float]],
) -> tuple[ExtractionRequest, list[Shown]] | None:
    """The second call's request, and the memories it shows, when a new fact's nearest stored memory was not
    shown; else None.

    Facts whose source message's shown neighbourhood provably holds every memory that close
    (pipeline.coverage) need no lookup."""
    adds = [
        d
        for d in decisions
        if d.op == "ADD"
        and not any(
            coverage.covered(vectors[d.text], *radii[i], SECOND_CALL_SIMILARITY) for i in d.sources if i in radii
        )
    ]
    if not adds or not followup_prompt.facts_without_ref(reply):
        return None
    shown = {c.id for c in req.candidates}
    async with db.connect() as conn:
        repo = CandidateRepository(conn)
        near = await repo.nearest_each(
            project_id, list(dict.fromkeys(scopes.values())), _stack([vectors[d.text] for d in adds]), k=3
        )
        missing = list(
            dict.fromkeys(
                mid for hits in near for mid, sim in hits if sim >= SECOND_CALL_SIMILARITY and mid not in shown
            )
        )
        if not missing:
            return None
        rows = await MemoryRepository(conn).get_many(project_id, missing)
    extra = _shown(list(rows), scopes, len(req.candidates) + 1)
    if not extra:
        return None
    return req.model_copy(update={"candidates": [c for c, _ in extra]}), extra


def _stack(vectors: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    return np.stack(vectors).astype(np.float32)
