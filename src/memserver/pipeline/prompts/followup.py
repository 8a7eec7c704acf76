"""The follow-up task: facts the first extraction call added (no ref) are reconciled with memories the first
prompt did not show (their nearest stored ones). Same reply model and validation as the extraction.

    req2 = req.model_copy(update={"candidates": nearest_to(followup.facts_without_ref(gen.value))})
    gen2 = await llm.generate(followup.build(req2, followup.facts_without_ref(gen.value)), followup.Reply,
                              context=followup.context(req2))
    decisions = reconcile.decide(req, gen.value, followup=(req2, gen2.value))
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from memserver.pipeline.prompts.extract import (
    FIELDS,
    RECONCILE,
    ExtractedFact,
    ExtractionReply,
    add_header,
    context,
    observed,
    render_candidates,
    user_message,
)
from memserver.pipeline.types import ChatMessage, ExtractionRequest

__all__ = ["SYSTEM", "Reply", "build", "context", "facts_without_ref"]

SYSTEM = f"""\
You keep long-term memories. Facts were extracted from a conversation; reconcile each of them with the existing \
memories below. Keep each fact's text, speaker, sources, categories and event dates (you may merge a fact into the \
text of an UPDATE); choose its action and ref.

{RECONCILE}

{FIELDS}"""

Reply = ExtractionReply


def facts_without_ref(reply: ExtractionReply) -> list[ExtractedFact]:
    """The ADD facts: those that matched no memory shown (the nearest ones may not have been in the prompt)."""
    return [f for f in reply.facts if f.ref is None]


def build(req: ExtractionRequest, facts: Sequence[ExtractedFact]) -> list[ChatMessage]:
    """Reconcile already-extracted facts with other candidates (`req.candidates`); laid out as the extraction
    prompt (the project's part first, byte-identical)."""
    keep = {"text", "speaker", "sources", "categories", "event_start", "event_end"}
    lines = [json.dumps(f.model_dump(include=keep, exclude_none=True)) for f in facts]
    sections = [
        *add_header(req),
        f"Observation date: {observed(req.observed_at)}",
        "Existing memories:\n" + render_candidates(req),
        "Facts to reconcile:\n" + "\n".join(lines),
    ]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user_message(req, sections)}]
