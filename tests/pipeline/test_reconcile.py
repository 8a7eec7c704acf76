"""decide(): the rules that have the last word over the model's proposed actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from memserver.pipeline.prompts.extract import ExtractionReply
from memserver.pipeline.prompts.extract import build as build_prompt
from memserver.pipeline.prompts.extract import context as reply_context
from memserver.pipeline.prompts.followup import build as build_followup_prompt
from memserver.pipeline.prompts.followup import facts_without_ref
from memserver.pipeline.reconcile import decide
from memserver.pipeline.types import Candidate, Decision, ExtractionRequest, InMessage
from tests.fakes.openai_server import echo_extractor

OSAKA = Candidate(ref=0, id=uuid4(), text="Lives in Osaka")
CAT = Candidate(ref=1, id=uuid4(), text="Has a cat named Miso", immutable=True)
AISLE = Candidate(ref=2, id=uuid4(), text="Prefers aisle seats")


@pytest.fixture
def req() -> ExtractionRequest:
    return ExtractionRequest(
        messages=[
            InMessage(index=0, role="user", text="I moved to Kyoto. Miso died, sadly. I like aisle seats."),
            InMessage(index=1, role="assistant", text="So sorry about Miso."),
            InMessage(index=2, role="user", text="Forget my seat preference."),
        ],
        candidates=[OSAKA, CAT, AISLE],
        observed_at=datetime(2025, 3, 14, tzinfo=UTC),
    )


def run(req: ExtractionRequest, *facts: dict[str, Any]) -> list[Decision]:
    full = [{"speaker": "user", "sources": [0], "categories": [], **f} for f in facts]
    reply = ExtractionReply.model_validate_json(json.dumps({"facts": full}), context=reply_context(req))
    return decide(req, reply)


def test_update_and_delete_carry_the_stored_text(req: ExtractionRequest) -> None:
    got = run(
        req,
        {"text": "Lives in Kyoto", "action": "UPDATE", "ref": 0},
        {"text": "whatever the model says", "action": "DELETE", "ref": 2, "sources": [2]},
    )
    assert got == [
        Decision(op="UPDATE", text="Lives in Kyoto", target_id=OSAKA.id, previous_text="Lives in Osaka", speaker="user",
                 sources=[0]),
        Decision(op="DELETE", text="Prefers aisle seats", target_id=AISLE.id, previous_text="Prefers aisle seats",
                 speaker="user", sources=[2]),
    ]  # fmt: skip


def test_immutable_memories_never_change(req: ExtractionRequest) -> None:
    got = run(
        req,
        {"text": "Had a cat named Miso, who died in March 2025", "action": "UPDATE", "ref": 1},
        {"text": "Has a cat named Miso", "action": "DELETE", "ref": 1},
    )
    assert [(d.op, d.target_id) for d in got] == [("ADD", None), ("NOOP", CAT.id)]
    assert got[0].text == "Had a cat named Miso, who died in March 2025"
    only_delete = run(req, {"text": "Has a cat named Miso", "action": "DELETE", "ref": 1})
    assert [(d.op, d.target_id) for d in only_delete] == [("NOOP", CAT.id)]


def test_an_exact_existing_text_is_a_noop_whatever_the_model_said(req: ExtractionRequest) -> None:
    got = run(req, {"text": "  Prefers   aisle seats ", "action": "ADD"})
    assert got == [
        Decision(op="NOOP", text="Prefers aisle seats", target_id=AISLE.id, previous_text="Prefers aisle seats",
                 speaker="user", sources=[0])
    ]  # fmt: skip
    updated_to_itself = run(req, {"text": "Lives in Osaka", "action": "UPDATE", "ref": 0})
    assert [(d.op, d.target_id) for d in updated_to_itself] == [("NOOP", OSAKA.id)]


def test_duplicate_facts_collapse_into_the_first(req: ExtractionRequest) -> None:
    got = run(
        req,
        {"text": "Moved to Kyoto", "action": "ADD", "categories": ["travel"]},
        {"text": "moved  to kyoto", "action": "ADD", "sources": [2], "categories": ["personal_details"]},
        {"text": "Likes trains", "action": "ADD"},
    )
    assert [(d.op, d.text) for d in got] == [("ADD", "Moved to Kyoto"), ("ADD", "Likes trains")]
    assert got[0].sources == [0, 2]
    assert got[0].categories == ["travel", "personal_details"]


def test_two_decisions_on_one_memory_keep_the_first(req: ExtractionRequest) -> None:
    got = run(
        req,
        {"text": "Lives in Kyoto", "action": "UPDATE", "ref": 0},
        {"text": "Lives in Osaka", "action": "DELETE", "ref": 0},
        {"text": "Lives in Kyoto near the station", "action": "UPDATE", "ref": 0},
    )
    # The DELETE is dropped; the second UPDATE still states a new fact, so it is kept as an ADD.
    assert [(d.op, d.target_id, d.text) for d in got] == [
        ("UPDATE", OSAKA.id, "Lives in Kyoto"),
        ("ADD", None, "Lives in Kyoto near the station"),
    ]


def test_noop_is_reported_with_its_target(req: ExtractionRequest) -> None:
    got = run(req, {"text": "Still in Osaka", "action": "NOOP", "ref": 0})
    assert got == [
        Decision(op="NOOP", text="Lives in Osaka", target_id=OSAKA.id, previous_text="Lives in Osaka", speaker="user",
                 sources=[0])
    ]  # fmt: skip


def test_the_echo_fake_reads_the_prompt_and_its_reply_validates(req: ExtractionRequest) -> None:
    body = {"messages": build_prompt(req), "response_format": {"type": "json_object"}}
    reply = ExtractionReply.model_validate_json(echo_extractor(body), context=reply_context(req))
    got = decide(req, reply)
    assert [(d.op, d.sources, d.speaker) for d in got] == [("ADD", [0], "user"), ("ADD", [2], "user")]
    assert got[1].text == "Forget my seat preference."


def test_the_echo_fake_keeps_followup_facts(req: ExtractionRequest) -> None:
    first = ExtractionReply.model_validate_json(
        echo_extractor({"messages": build_prompt(req)}), context=reply_context(req)
    )
    req2 = req.model_copy(update={"candidates": []})
    body = {"messages": build_followup_prompt(req2, facts_without_ref(first))}
    again = ExtractionReply.model_validate_json(echo_extractor(body), context=reply_context(req2))
    assert again == first


def test_followup_decisions_replace_the_ref_less_facts(req: ExtractionRequest) -> None:
    first = [
        {"text": "Lives in Kyoto", "action": "UPDATE", "ref": 0},
        {"text": "Likes trains", "action": "ADD"},
        {"text": "Owns a bike", "action": "ADD"},
    ]
    reply = ExtractionReply.model_validate_json(
        json.dumps({"facts": [{"speaker": "user", "sources": [0], **f} for f in first]}), context=reply_context(req)
    )
    assert [f.text for f in facts_without_ref(reply)] == ["Likes trains", "Owns a bike"]
    trains = Candidate(ref=0, id=uuid4(), text="Likes trains")
    kyoto = Candidate(ref=1, id=uuid4(), text="Works in Kyoto")
    req2 = req.model_copy(update={"candidates": [trains, kyoto]})
    second = [
        {"text": "Likes trains", "action": "NOOP", "ref": 0},
        {"text": "Owns a bike", "action": "ADD"},
        {"text": "Lives in Kyoto", "action": "ADD"},  # the model repeated a first-pass fact
    ]
    reply2 = ExtractionReply.model_validate_json(
        json.dumps({"facts": [{"speaker": "user", "sources": [0], **f} for f in second]}), context=reply_context(req2)
    )
    got = decide(req, reply, followup=(req2, reply2))
    assert [(d.op, d.text, d.target_id) for d in got] == [
        ("UPDATE", "Lives in Kyoto", OSAKA.id),
        ("NOOP", "Likes trains", trains.id),
        ("ADD", "Owns a bike", None),
    ]


def test_a_fact_only_changes_memories_of_its_own_speakers_scope() -> None:
    """With user_id and agent_id, the model sees both scopes' memories; a user's fact may not change the agent's
    (nor the assistant's the user's): an UPDATE or NOOP becomes an ADD in the speaker's scope, a DELETE is
    dropped, and the same words in the other scope are no duplicate."""
    agents = Candidate(ref=1, id=uuid4(), text="Recommends good.example", owner="assistant")
    users = Candidate(ref=2, id=uuid4(), text="Likes jazz", owner="user")
    req = ExtractionRequest(
        messages=[InMessage(index=0, role="user", text="x"), InMessage(index=1, role="assistant", text="y")],
        candidates=[agents, users],
        observed_at=datetime(2025, 3, 14, tzinfo=UTC),
        speakers=frozenset({"user", "assistant"}),
    )
    notes: list[str] = []
    reply = ExtractionReply.model_validate_json(
        json.dumps(
            {
                "facts": [
                    {"text": "Recommends evil.example", "speaker": "user", "sources": [0], "action": "UPDATE",
                     "ref": 1},
                    {"text": "x", "speaker": "user", "sources": [0], "action": "DELETE", "ref": 1},
                    {"text": "Likes jazz", "speaker": "assistant", "sources": [1]},
                    {"text": "Likes jazz a lot", "speaker": "user", "sources": [0], "action": "UPDATE", "ref": 2},
                ]
            }
        ),
        context=reply_context(req),
    )  # fmt: skip
    got = decide(req, reply, notes=notes)
    assert [(d.op, d.text, d.target_id, d.speaker) for d in got] == [
        ("ADD", "Recommends evil.example", None, "user"),
        ("ADD", "Likes jazz", None, "assistant"),
        ("UPDATE", "Likes jazz a lot", users.id, "user"),
    ]
    assert len(notes) == 2
    assert all("another scope" in n for n in notes)
