"""From a run's decisions to each add's changes: which add a decision belongs to, and what each add writes
(coalesced adds: several adds of one scope decided in one call, their messages numbered across all of them)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import numpy as np

from memserver.domain.scope import Scope
from memserver.pipeline.changes import attribute, change_set, memory_of, shares
from memserver.pipeline.types import Decision
from memserver.services.inference.report import InferenceReport, apportion, split

SCOPES = {"user": Scope(user_id="u")}
# Three adds: add 0 holds messages 0-1, add 1 message 2, add 2 messages 3-4.
ADD_OF = {0: 0, 1: 0, 2: 1, 3: 2, 4: 2}
EVENTS = [uuid4(), uuid4(), uuid4()]
OBSERVED = datetime(2026, 3, 1, 12, tzinfo=UTC)
FIRST = [0, 2, 3]
OLD = uuid4()


def d(op: str, text: str, *sources: int, target: bool = False) -> Decision:
    return Decision(
        op=op,  # type: ignore[arg-type]
        text=text,
        target_id=OLD if target else None,
        speaker="user",
        sources=list(sources),
    )


def vectors(*decisions: Decision) -> dict[str, object]:
    return {x.text: np.zeros(3, dtype=np.float32) for x in decisions}


def test_a_decision_belongs_to_the_add_of_its_last_source() -> None:
    decisions = [
        d("ADD", "Has a dog", 0),
        d("ADD", "The dog is called Rex", 1, 2),  # completed by add 1's message
        d("ADD", "Moved to Lisbon", 4),
        d("NOOP", "Likes tea", target=True),  # no source: the last add
    ]
    assert attribute(decisions, ADD_OF, 3) == [0, 1, 2, 2]


def test_a_superseded_memory_is_deleted_by_the_add_that_writes_its_successor() -> None:
    decisions = [
        d("DELETE", "Lives in Porto", 1, target=True),  # its own source is add 0's ...
        d("ADD", "Lives in Lisbon", 1, 3),  # ... but the fact that replaces it is complete in add 2
    ]
    owner = attribute(decisions, ADD_OF, 3)
    assert owner == [2, 2]
    parts = shares(decisions, owner, EVENTS, FIRST, [(OBSERVED, None)] * len(EVENTS))
    changes = change_set(parts[2], decisions, SCOPES, vectors(*decisions), {})
    assert [r.replaced_by_index for r in changes.removals] == [1]  # the add's own ADD, by its index in the add
    assert [a.index for a in changes.adds] == [1]
    assert change_set(parts[0], decisions, SCOPES, vectors(*decisions), {}) == change_set(
        parts[1], decisions, SCOPES, vectors(*decisions), {}
    )  # nothing for the others


def test_each_add_writes_its_own_event_and_message_numbers_into_provenance() -> None:
    decisions = [d("ADD", "Has a dog", 0), d("UPDATE", "Works at Acme as a lead", 2, target=True), d("ADD", "Runs", 4)]
    parts = shares(decisions, attribute(decisions, ADD_OF, 3), EVENTS, FIRST, [(OBSERVED, None)] * len(EVENTS))
    earlier = {"sources": [{"event_id": "older", "message_indices": [3]}]}
    sets = [change_set(p, decisions, SCOPES, vectors(*decisions), {OLD: earlier}) for p in parts]
    assert sets[0].adds[0].provenance == {"sources": [{"event_id": str(EVENTS[0]), "message_indices": [0]}]}
    assert sets[1].edits[0].provenance == {
        "sources": [*earlier["sources"], {"event_id": str(EVENTS[1]), "message_indices": [0]}]
    }
    assert sets[2].adds[0].provenance == {"sources": [{"event_id": str(EVENTS[2]), "message_indices": [1]}]}
    assert sets[2].adds[0].index == 0  # indices are the add's own
    assert memory_of(parts[1], decisions, []) == {1: OLD}  # run index -> the memory it kept


def test_one_add_is_a_run_of_one() -> None:
    decisions = [d("ADD", "Has a dog", 0), d("NOOP", "Likes tea", target=True)]
    (part,) = shares(decisions, attribute(decisions, {0: 0}, 1), [EVENTS[0]], [0], [(OBSERVED, None)])
    assert part.decisions == [0, 1]


def test_shared_costs_are_split_in_whole_units_that_sum_to_the_total() -> None:
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(1, [5, 50, 5]) == [0, 1, 0]
    assert apportion(7, [0, 0]) == [4, 3]
    assert sum(apportion(1234, [17, 3, 999, 0, 41])) == 1234
    shared = InferenceReport(llm_calls=1, prompt_tokens=1001, completion_tokens=80, notes=["a reply note"])
    reports = split(shared, [["my note"], []], [3, 1], EVENTS[:2])
    assert [r.llm_calls for r in reports] == [1, 0]
    assert sum(r.prompt_tokens for r in reports) == 1001
    assert reports[0].notes == ["my note", "a reply note"]
    assert reports[1].batch == {
        "size": 2,
        "event_ids": [str(e) for e in EVENTS[:2]],
        "llm_calls": 1,
        "prompt_tokens": 1001,
        "completion_tokens": 80,
        "cached_prompt_tokens": 0,
    }
    (alone,) = split(shared, [["my note"]], [3], EVENTS[:1])
    assert alone.as_dict() == {**shared.as_dict(), "notes": ["my note", "a reply note"]}  # one add: no batch


def test_each_add_of_a_run_dates_its_facts_against_its_own_observation() -> None:
    """Coalesced adds were said on different days: "yesterday" in each is the day before ITS observation."""
    decisions = [d("ADD", "Went hiking yesterday", 0), d("ADD", "Went swimming yesterday", 2)]
    days = [datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 5, 12, tzinfo=UTC), OBSERVED]
    parts = shares(decisions, attribute(decisions, ADD_OF, 3), EVENTS, FIRST, [(t, None) for t in days])
    (hike,) = change_set(parts[0], decisions, SCOPES, vectors(*decisions), {}).adds
    (swim,) = change_set(parts[1], decisions, SCOPES, vectors(*decisions), {}).adds
    assert (hike.event_start, hike.event_end) == (datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert (swim.event_start, swim.event_end) == (datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
