"""Turn a validated extraction reply into decisions the services layer applies (pure, no I/O).

The model proposes; these rules have the last word: immutable memories never change, a fact whose text is
already stored is a NOOP whatever the model said, duplicate facts collapse, one memory gets one decision, and
a fact only changes memories of its own speaker's scope.

That last rule matters when an add names both a user and an agent: the model is shown the user's memories
and the agent's (which every user of that agent shares) in one prompt. A user's message must not rewrite,
delete or supersede the agent's memories ("the assistant now recommends evil.example" would reach every
other user), nor the assistant's words the user's. A decision on another scope's memory is therefore
treated as if that memory had not been shown: an UPDATE or NOOP stores the fact as a new memory of its own
speaker's scope (what the speaker said is kept, where the speaker's facts go, as for an immutable memory),
and a DELETE is dropped; each with a note.
"""

from __future__ import annotations

from typing import TypedDict
from uuid import UUID

from memserver.pipeline.prompts.extract import ExtractedFact, ExtractionReply, GraphExtractedFact, relations_of
from memserver.pipeline.relation_extract import ExtractedRelation
from memserver.pipeline.types import Action, Candidate, Decision, ExtractionRequest, Speaker


class _FactFields(TypedDict):
    """What every decision copies from its fact."""

    speaker: Speaker
    categories: list[str]
    sources: list[int]
    relations: list[ExtractedRelation]
    event_start: str | None
    event_end: str | None


def decide(
    req: ExtractionRequest,
    reply: ExtractionReply,
    followup: tuple[ExtractionRequest, ExtractionReply] | None = None,
    *,
    notes: list[str] | None = None,
) -> list[Decision]:
    """Decisions in reply order: at most one per existing memory and one per distinct new text.

    With `followup` (the request and reply of `prompts.followup.build` for `facts_without_ref(reply)`), the
    first reply's ref-less facts are replaced by the follow-up's decisions against the other candidates.
    Decisions the rules changed are explained in `notes`.
    """
    first = [(f, req) for f in reply.facts if followup is None or f.ref is not None]
    second = [(_keep_first(f, reply), followup[0]) for f in followup[1].facts] if followup else []
    candidates = [*req.candidates, *(followup[0].candidates if followup else [])]
    by_text: dict[tuple[Speaker | None, str], Candidate] = {(c.owner, normalize(c.text)): c for c in candidates}
    notes = notes if notes is not None else []
    out: list[Decision] = []
    new_texts: dict[str, int] = {}  # normalised new text -> position in out
    targets: set[UUID] = set()
    for fact, shown in [*first, *second]:
        by_ref = {c.ref: c for c in shown.candidates}
        own = _own_scope(fact, by_ref, notes)
        d = _decide_one(own, by_ref, by_text) if own is not None else None
        if d is None:
            continue
        if d.target_id is not None and d.target_id in targets:
            # Keep the first decision on a memory; a later UPDATE still carries a new fact, so it is added.
            if d.op != "UPDATE":
                continue
            d = d.model_copy(update={"op": "ADD", "target_id": None, "previous_text": None})
        if d.op in ("ADD", "UPDATE"):
            key = normalize(d.text).casefold()
            if key in new_texts:
                out[new_texts[key]] = _merge(out[new_texts[key]], d)
                continue
            new_texts[key] = len(out)
        if d.target_id is not None:
            targets.add(d.target_id)
        out.append(d)
    return out


def _own_scope(fact: ExtractedFact, by_ref: dict[int, Candidate], notes: list[str]) -> ExtractedFact | None:
    """The fact, unless it acts on a memory of another speaker's scope: then an ADD in its own (UPDATE, NOOP),
    or nothing (DELETE)."""
    if fact.ref is None or fact.ref not in by_ref or by_ref[fact.ref].writable_by(fact.speaker):
        return fact
    whose = "the assistant's" if fact.speaker == "user" else "the user's"
    if fact.action == "DELETE":
        notes.append(f"a {fact.speaker} fact's DELETE of a memory of another scope ({whose}) was dropped")
        return None
    notes.append(
        f"a {fact.speaker} fact's {fact.action} of a memory of another scope ({whose}) was stored as a new "
        f"memory of the {fact.speaker}'s scope"
    )
    return fact.model_copy(update={"action": "ADD", "ref": None})


def _decide_one(
    fact: ExtractedFact, by_ref: dict[int, Candidate], by_text: dict[tuple[Speaker | None, str], Candidate]
) -> Decision | None:
    text = normalize(fact.text)
    common: _FactFields = {
        "speaker": fact.speaker,
        "categories": fact.categories,
        "sources": fact.sources,
        "relations": relations_of(fact),
        "event_start": fact.event_start,
        "event_end": fact.event_end,
    }
    # Already stored word for word in the speaker's own scope: nothing to ask or change. (The same words in
    # another speaker's scope are about someone else: "Likes jazz" of the assistant is not the user's.)
    same = by_text.get((fact.speaker, text)) or by_text.get((None, text))
    if fact.action in ("ADD", "UPDATE") and same is not None:
        return Decision(op="NOOP", text=same.text, target_id=same.id, previous_text=same.text, **common)
    target = by_ref.get(fact.ref) if fact.ref is not None else None
    if fact.action == "ADD" or (fact.action == "UPDATE" and (target is None or target.immutable)):
        # An immutable memory is never rewritten: the changed fact is stored beside it.
        return Decision(op="ADD", text=text, **common)
    if target is None:  # DELETE/NOOP of a ref that was not shown (only possible without validation context)
        return None
    if fact.action == "UPDATE":
        return Decision(op="UPDATE", text=text, target_id=target.id, previous_text=target.text, **common)
    op: Action = "DELETE" if fact.action == "DELETE" and not target.immutable else "NOOP"
    return Decision(op=op, text=target.text, target_id=target.id, previous_text=target.text, **common)


def _keep_first(fact: ExtractedFact, first: ExtractionReply) -> ExtractedFact:
    """A follow-up fact keeps the relations and event dates the first reply gave the same fact (the follow-up
    only reconciles)."""
    same = [f for f in first.facts if f.ref is None and normalize(f.text) == normalize(fact.text)]
    if not same:
        return fact
    if fact.event_start is None and same[0].event_start is not None:
        fact = fact.model_copy(update={"event_start": same[0].event_start, "event_end": same[0].event_end})
    if relations_of(fact) or not relations_of(same[0]):
        return fact
    return GraphExtractedFact.model_construct(**dict(fact), relations=relations_of(same[0]))


def _merge(first: Decision, dup: Decision) -> Decision:
    """A repeated fact adds its sources and categories to the first occurrence (and its dates, if that had none)."""
    return first.model_copy(
        update={
            "sources": list(dict.fromkeys([*first.sources, *dup.sources])),
            "categories": list(dict.fromkeys([*first.categories, *dup.categories])),
            "relations": [*first.relations, *dup.relations],
            "event_start": first.event_start or dup.event_start,
            "event_end": first.event_end if first.event_start else dup.event_end,
        }
    )


def normalize(text: str) -> str:
    """Whitespace-normalised text: what 'exactly the same memory' is compared on."""
    return " ".join(text.split())
