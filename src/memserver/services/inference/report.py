"""What an inferred add cost and did, stored on its event (`metadata`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memserver.domain.relations import GraphChanges
from memserver.pipeline.types import Decision
from memserver.providers.llm.base import Usage


@dataclass
class InferenceReport:
    """What an inferred add cost and did; stored on its event (`metadata`)."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # of prompt_tokens, served from the endpoint's prefix cache
    second_call: bool = False
    candidates: int = 0
    thinks: int = 0
    notes: list[str] = field(default_factory=list)
    graph: GraphChanges | None = None  # enable_graph: what the add did to the graph
    batch: dict[str, Any] | None = None  # a coalesced add: the shared call's size, events and whole cost
    decisions: list[dict[str, Any]] | None = None  # what the LLM decided per fact, with its source messages

    def note(self, notes: list[str]) -> None:
        """Add notes once each (an add thought again decides, and notes, again)."""
        self.notes += [n for n in notes if n not in self.notes]

    def add_usage(self, usage: Usage) -> None:
        self.llm_calls += usage.calls
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cached_prompt_tokens += usage.cached_prompt_tokens

    def spent(self) -> dict[str, int]:
        """What the LLM calls so far cost (recorded on the event also when the add fails)."""
        return {f: getattr(self, f) for f in USAGE}

    def as_dict(self) -> dict[str, Any]:
        return {
            "llm_calls": self.llm_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "second_call": self.second_call,
            "candidates": self.candidates,
            "notes": self.notes,
            **({"graph": self.graph.summary()} if self.graph is not None else {}),
            **({"batch": self.batch} if self.batch is not None else {}),
            **({"decisions": self.decisions} if self.decisions is not None else {}),
        }


USAGE = ("llm_calls", "prompt_tokens", "completion_tokens", "cached_prompt_tokens")


def decisions_out(
    decisions: Sequence[Decision], memories: Mapping[int, uuid.UUID | None], first_message: int = 0
) -> list[dict[str, Any]]:
    """What the LLM decided per fact for one add, as its event's `metadata.decisions` shows it: the operation,
    the fact (UPDATE: and the text it replaced), the memory written or kept, and the messages it came from.
    `memories` maps the add's decisions (positions in the run's list, in order) to their memories; message
    indices are into the add's own `payload.messages` (a coalesced run numbers messages from `first_message`)."""
    return [
        {
            "op": decisions[g].op,
            "text": decisions[g].text,
            "previous_text": decisions[g].previous_text,
            "memory_id": None if memory is None else str(memory),
            "speaker": decisions[g].speaker,
            "categories": list(decisions[g].categories),
            "message_indices": sorted(i - first_message for i in decisions[g].sources),
        }
        for g, memory in memories.items()
    ]


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` in whole units that sum to it exactly (largest remainder;
    equal shares when every weight is 0)."""
    w = [max(0, x) for x in weights]
    if not any(w):
        w = [1] * len(w)
    s = sum(w)
    base = [total * x // s for x in w]
    rest = total - sum(base)
    for i in sorted(range(len(w)), key=lambda i: (-(total * w[i] % s), i))[:rest]:
        base[i] += 1
    return base


def split(
    shared: InferenceReport, own_notes: Sequence[list[str]], weights: Sequence[int], events: Sequence[uuid.UUID]
) -> list[InferenceReport]:
    """Each add's report of a run: its own notes (what reading its messages skipped or cut), then the run's.

    A run of one add reports what the run did. The adds of a coalesced run shared their LLM calls: each gets a
    share of them and of their tokens in proportion to its messages' characters (`weights`), so the shares sum
    to what was spent, and `batch` says what the whole call cost and which events it served."""
    parts = {f: apportion(getattr(shared, f), weights) for f in USAGE}
    out = []
    for k, notes in enumerate(own_notes):
        report = InferenceReport(
            llm_calls=parts["llm_calls"][k],
            prompt_tokens=parts["prompt_tokens"][k],
            completion_tokens=parts["completion_tokens"][k],
            cached_prompt_tokens=parts["cached_prompt_tokens"][k],
            second_call=shared.second_call,
            candidates=shared.candidates,
            thinks=shared.thinks,
            notes=list(notes),
        )
        report.note(shared.notes)
        if len(own_notes) > 1:
            report.batch = {"size": len(own_notes), "event_ids": [str(e) for e in events]}
            report.batch |= {f: getattr(shared, f) for f in USAGE}
        out.append(report)
    return out
