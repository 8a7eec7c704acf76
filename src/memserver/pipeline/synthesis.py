"""Dream synthesis decisions (pure): what a run shows the model, whether it needs to call it at all, and what
the model's patterns become: ADD a new pattern memory, UPDATE one in place, or NOOP.

- The run's input hash covers every memory and pattern it would show (id and content hash): equal to the last
  run's, nothing new can come of a call, so none is made.
- A pattern's evidence hash covers its source memories (id and content hash, so an edited source is new
  evidence). A pattern whose evidence hash equals an existing pattern's is that pattern again: NOOP, whatever
  its wording (a re-run never duplicates a pattern for the same evidence).
- A pattern that `updates` an existing one, or shares at least half of its evidence with one (Jaccard; the
  model forgot to say so), rewrites that pattern in place: its evidence becomes the old and the new together.
- Any other pattern is new, unless an existing pattern already has exactly its text (NOOP).
At most `max_writes` ADD/UPDATE per run; the rest is noted and left to the next run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from memserver.pipeline.messages import text_hash
from memserver.pipeline.prompts.dream import DreamMemory, DreamPattern, Reply

SAME_THREAD = 0.5  # evidence overlap (Jaccard) at which a pattern is taken to rewrite an existing one
MAX_CATEGORIES = 3


@dataclass(frozen=True)
class Source:
    """A memory a run reads (eligible: the user's own, after the forward boundary), oldest first."""

    id: uuid.UUID
    text: str
    hash: str
    created_at: datetime | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pattern:
    """An existing pattern memory of the user, with the ids of its evidence that still exist."""

    id: uuid.UUID
    text: str
    hash: str
    sources: tuple[uuid.UUID, ...]
    evidence_hash: str | None = None


@dataclass(frozen=True)
class Write:
    """What one pattern of the reply becomes. `target`: the pattern an UPDATE rewrites or a NOOP matched."""

    op: Literal["ADD", "UPDATE", "NOOP"]
    text: str
    sources: tuple[uuid.UUID, ...]
    evidence_hash: str
    target: uuid.UUID | None = None
    categories: list[str] = field(default_factory=list)


def digest(pairs: Iterable[tuple[uuid.UUID, str]]) -> str:
    """sha256 over sorted (id, content hash) pairs."""
    h = hashlib.sha256()
    for mid, content in sorted({(str(i), c) for i, c in pairs}):
        h.update(f"{mid}:{content}\n".encode())
    return h.hexdigest()


def input_hash(memories: Sequence[Source], patterns: Sequence[Pattern]) -> str:
    """What a run would show the model: equal to the last run's input, a call can bring nothing new."""
    return digest([*((m.id, m.hash) for m in memories), *((p.id, p.hash) for p in patterns)])


def prompt_inputs(
    memories: Sequence[Source], patterns: Sequence[Pattern]
) -> tuple[list[DreamMemory], list[DreamPattern]]:
    """The memories and patterns as the prompt shows them (memory refs are positions from 1)."""
    ref = {m.id: i for i, m in enumerate(memories, 1)}
    shown = [DreamMemory(text=m.text, created_at=m.created_at) for m in memories]
    pats = [
        DreamPattern(
            text=p.text,
            evidence=tuple(sorted(ref[s] for s in p.sources if s in ref)),
            unshown=sum(1 for s in p.sources if s not in ref),
        )
        for p in patterns
    ]
    return shown, pats


def decide(
    reply: Reply,
    memories: Sequence[Source],
    patterns: Sequence[Pattern],
    hashes: Mapping[uuid.UUID, str],
    *,
    max_writes: int,
    notes: list[str],
) -> list[Write]:
    """The reply's patterns as writes. `hashes`: the content hash of every memory that may be evidence (the
    memories shown and the existing patterns' sources that still exist)."""
    by_evidence = {p.evidence_hash: p for p in patterns if p.evidence_hash}
    by_text = {p.hash: p for p in patterns}
    shown_texts = {m.hash: i for i, m in enumerate(memories, 1)}
    taken: set[uuid.UUID] = set()  # patterns already rewritten (or matched) by this reply
    writes: list[Write] = []
    for item in reply.patterns:
        new = tuple(dict.fromkeys(memories[r - 1].id for r in item.evidence))
        target = patterns[item.updates - 1] if item.updates is not None else _same_thread(new, patterns, taken)
        if target is not None and target.id in taken:
            target = None  # one rewrite per pattern and run: a second one is judged as a new pattern
        sources = tuple(dict.fromkeys([*(target.sources if target else ()), *new]))
        known = [(s, hashes[s]) for s in sources if s in hashes]
        evidence = digest(known)
        cats = categories(memories, sources)
        same = by_evidence.get(evidence)
        if same is None and (twin := by_text.get(text_hash(item.text))) is not None and twin is not target:
            same = twin  # another pattern already says exactly this
        if same is not None:
            taken.add(same.id)
            writes.append(Write("NOOP", same.text, same.sources, same.evidence_hash or evidence, same.id))
        elif (ref := shown_texts.get(text_hash(item.text))) is not None:
            notes.append(f"a pattern restating memory {ref} word for word was left out")
        elif sum(w.op != "NOOP" for w in writes) >= max_writes:
            notes.append(f"more than {max_writes} patterns to write: the rest are left for the next run")
            break
        elif target is not None:
            taken.add(target.id)
            writes.append(Write("UPDATE", item.text, sources, evidence, target.id, cats))
        else:
            writes.append(Write("ADD", item.text, sources, evidence, None, cats))
    return writes


def _same_thread(new: tuple[uuid.UUID, ...], patterns: Sequence[Pattern], taken: set[uuid.UUID]) -> Pattern | None:
    """The existing pattern whose evidence overlaps the new evidence most, if by SAME_THREAD or more."""
    best, score = None, 0.0
    for p in patterns:
        if p.id in taken or not p.sources:
            continue
        a, b = set(new), set(p.sources)
        jaccard = len(a & b) / len(a | b)
        if jaccard >= SAME_THREAD and jaccard > score:
            best, score = p, jaccard
    return best


def categories(memories: Sequence[Source], sources: Iterable[uuid.UUID]) -> list[str]:
    """The sources' most common categories (at most MAX_CATEGORIES)."""
    wanted = set(sources)
    counts = Counter(c for m in memories if m.id in wanted for c in m.categories)
    return [c for c, _ in counts.most_common(MAX_CATEGORIES)]
