"""The extraction prompt and its reply model: what the model is shown and which replies are refused."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from memserver.pipeline.categories import DEFAULT_CATEGORIES, catalogue
from memserver.pipeline.prompts.extract import SYSTEM as EXTRACT_SYSTEM
from memserver.pipeline.prompts.extract import ExtractionReply
from memserver.pipeline.prompts.extract import build as build_prompt
from memserver.pipeline.prompts.extract import context as reply_context
from memserver.pipeline.prompts.followup import SYSTEM as FOLLOWUP_SYSTEM
from memserver.pipeline.prompts.followup import build as build_followup_prompt
from memserver.pipeline.prompts.followup import facts_without_ref
from memserver.pipeline.types import AddGroup, Candidate, ExtractionRequest, InMessage, speakers_for
from tests.fakes.openai_server import approx_tokens

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
OBSERVED = datetime(2025, 3, 14, 16, 30, tzinfo=UTC)


def request(**kw: Any) -> ExtractionRequest:
    base: dict[str, Any] = {
        "messages": [
            InMessage(index=0, role="system", text="You are a travel agent bot."),
            InMessage(index=1, role="user", name="Alice", text="I flew back from Tokyo yesterday.\nIt was great."),
            InMessage(index=2, role="assistant", text="Welcome back! I booked you the aisle seat as you like."),
        ],
        "candidates": [
            Candidate(ref=i, id=uuid4(), text=t, created_at=datetime(2024, 1, i + 1, tzinfo=UTC))
            for i, t in enumerate(["Lives in Osaka", "Prefers aisle seats", "Has a cat named Miso"])
        ],
        "observed_at": OBSERVED,
    }
    return ExtractionRequest(**{**base, **kw})


def user_text(req: ExtractionRequest) -> str:
    msgs = build_prompt(req)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == EXTRACT_SYSTEM
    return str(msgs[1]["content"])


def parse(req: ExtractionRequest, *facts: dict[str, Any]) -> ExtractionReply:
    return ExtractionReply.model_validate_json(json.dumps({"facts": list(facts)}), context=reply_context(req))


def fact(**kw: Any) -> dict[str, Any]:
    return {"text": "Went to Tokyo", "speaker": "user", "sources": [1], "categories": [], "action": "ADD", **kw}


def test_prompt_shows_the_observation_date_to_resolve_relative_dates() -> None:
    text = user_text(request())
    assert "New messages:\nObserved 2025-03-14 16:30 UTC (Friday):\n[0] system" in text
    assert "yesterday" in EXTRACT_SYSTEM
    assert "absolute dates computed from the observation date of the message's add" in EXTRACT_SYSTEM


def test_the_project_part_comes_first_and_is_byte_identical_between_adds() -> None:
    """Prefix caching: the system text, then the project's categories and instructions, then `---`; everything
    an add changes (the date, whose facts, the memories, the messages) comes after it."""
    rules = {"custom_instructions": "Write in the third person.", "includes": "travel plans"}
    one = build_prompt(request(**rules))
    other = build_prompt(
        request(
            **rules,
            observed_at=datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
            candidates=[Candidate(ref=1, id=uuid4(), text="Owns a bike")],
            messages=[InMessage(index=0, role="user", text="I bought a car.")],
        )
    )
    assert one[0] == other[0]
    head, _, rest = str(one[1]["content"]).partition("\n\n---\n\n")
    assert str(other[1]["content"]).startswith(head + "\n\n---\n\n")
    assert head.startswith("Categories:\n- personal_details: ")
    assert head.endswith(
        "Extra instructions:\n- Pay particular attention to: travel plans\n- For user facts: Write in the third person."
    )
    for varying in ("2025", "Osaka", "Tokyo"):
        assert varying not in head
    assert rest.startswith("Extract facts stated by: user.")


def test_several_adds_are_one_request_with_their_own_dates() -> None:
    req = ExtractionRequest(
        groups=[
            AddGroup(observed_at=OBSERVED, messages=[InMessage(index=0, role="user", text="I ran today.")]),
            AddGroup(
                observed_at=datetime(2025, 3, 15, 8, 0, tzinfo=UTC),
                messages=[InMessage(index=1, role="user", text="Rested today.")],
            ),
        ],
    )
    assert [m.index for m in req.messages] == [0, 1]
    assert req.observed_at == datetime(2025, 3, 15, 8, 0, tzinfo=UTC)
    conversation = user_text(req).split("New messages:\n", 1)[1]
    assert conversation.splitlines() == [
        "Add 1 of 2, observed 2025-03-14 16:30 UTC (Friday):",
        "[0] user: I ran today.",
        "Add 2 of 2, observed 2025-03-15 08:00 UTC (Saturday):",
        "[1] user: Rested today.",
    ]
    with pytest.raises(ValidationError, match="message indices must be unique"):
        ExtractionRequest(groups=[AddGroup(observed_at=OBSERVED, messages=req.messages[:1])] * 2)


def test_memories_are_shown_under_small_refs_and_never_their_uuids() -> None:
    req = request()
    prompt = json.dumps(build_prompt(req))
    assert UUID_RE.search(prompt) is None
    text = user_text(req)
    assert "ref 0: Lives in Osaka (noted 2024-01-01)" in text
    assert "ref 2: Has a cat named Miso (noted 2024-01-03)" in text


def test_conversation_lines_carry_index_role_and_name_and_system_is_context_only() -> None:
    text = user_text(request())
    conversation = text.split("New messages:\n", 1)[1]
    assert conversation.splitlines() == [
        "Observed 2025-03-14 16:30 UTC (Friday):",
        "[0] system [context only]: You are a travel agent bot.",
        "[1] user (Alice): I flew back from Tokyo yesterday.",
        "    It was great.",
        "[2] assistant: Welcome back! I booked you the aisle seat as you like.",
    ]


def test_no_memories_is_said_explicitly() -> None:
    assert "Existing memories:\n(none)" in user_text(request(candidates=[]))


def test_includes_excludes_and_custom_instructions_reach_the_prompt() -> None:
    text = user_text(
        request(includes="travel plans", excludes="seat preferences", custom_instructions="Write in the third person.")
    )
    assert "- Pay particular attention to: travel plans" in text
    assert "- Never extract: seat preferences" in text
    assert "- For user facts: Write in the third person." in text


def test_agent_instructions_govern_assistant_facts_only() -> None:
    only_user = user_text(request(custom_instructions="U rules", agent_custom_instructions="A rules"))
    assert "U rules" in only_user
    assert "A rules" not in only_user
    both = user_text(
        request(
            speakers=frozenset({"user", "assistant"}),
            custom_instructions="U rules",
            agent_custom_instructions="A rules",
        )
    )
    assert "- For user facts: U rules" in both
    assert "- For assistant facts: A rules" in both
    assert "Extract facts stated by: user, assistant." in both
    agent = user_text(request(speakers=frozenset({"assistant"}), agent_custom_instructions="A rules"))
    assert "Extract facts stated by: assistant" in agent
    assert "- For assistant facts: A rules" in agent


def test_category_catalogue_is_shown_with_descriptions() -> None:
    assert len(DEFAULT_CATEGORIES) == 15
    text = user_text(request())
    for name, desc in DEFAULT_CATEGORIES.items():
        assert f"- {name}: {desc}" in text
    custom = user_text(request(categories={"wine": "wines they like"}))
    assert "- wine: wines they like" in custom
    assert "personal_details" not in custom


def test_fixed_instructions_stay_compact() -> None:
    # Mem0 spends ~9k prompt tokens per add; the fixed part here must stay well under 1.5k.
    assert approx_tokens(EXTRACT_SYSTEM) < 1000
    assert approx_tokens(FOLLOWUP_SYSTEM) < 800
    many = request(
        candidates=[Candidate(ref=i, id=uuid4(), text=f"Memory number {i} about something") for i in range(10)]
    )
    whole = " ".join(str(m["content"]) for m in build_prompt(many))
    assert approx_tokens(whole) < 1600


def test_a_valid_reply_passes_and_unknown_categories_are_dropped() -> None:
    req = request()
    reply = parse(req, fact(categories=["Travel", "astrology", "travel"]), fact(action="update", ref=1, text=" x  y "))
    assert reply.facts[0].categories == ["travel"]
    assert reply.facts[1].action == "UPDATE"
    assert reply.facts[1].text == "x y"
    assert parse(req, fact(action="NONE", ref=0)).facts[0].action == "NOOP"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (fact(action="DELETE"), "action DELETE needs the ref"),
        (fact(action="NOOP", ref=3), "ref 3 is not one of the existing memories shown"),
        (fact(speaker="assistant", sources=[2]), "facts stated by the assistant were not requested"),
        (fact(text="   "), "text is empty"),
        (fact(speaker="bot"), "Input should be 'user' or 'assistant'"),
    ],
)
def test_facts_that_state_nothing_usable_are_refused(bad: dict[str, Any], message: str) -> None:
    """Refused item by item: the adapter drops such a fact with a note and keeps the rest."""
    with pytest.raises(ValidationError, match=re.escape(message)):
        parse(request(), fact(), bad)


@pytest.mark.parametrize(
    ("slip", "fixed", "note"),
    [
        (fact(ref=0), {"action": "ADD", "ref": None}, None),
        (fact(action="UPDATE"), {"action": "ADD", "ref": None}, "an UPDATE without a ref was kept as an ADD"),
        (
            fact(action="UPDATE", ref=7),
            {"action": "ADD", "ref": None},
            "an UPDATE of ref 7, which was not shown, was kept as an ADD",
        ),
        (  # the system message is context, never a source
            fact(sources=[0]),
            {"sources": [1]},
            "a fact whose sources [0] are not user or assistant messages was attributed to every user message",
        ),
        (
            fact(sources=[1, 9]),
            {"sources": [1]},
            "sources [9] are not user or assistant messages of the conversation and were removed from a fact",
        ),
        (fact(sources=[]), {"sources": [1]}, "a fact without sources was attributed to every user message"),
        (
            fact(sources=[2]),
            {"sources": [1, 2]},
            "a fact whose sources [2] are not messages of the user was attributed to every user message",
        ),
        (fact(speaker=None), {"speaker": "user"}, None),  # the one speaker requested
    ],
)
def test_facts_that_still_mean_something_are_kept_with_a_note(
    slip: dict[str, Any], fixed: dict[str, Any], note: str | None
) -> None:
    notes: list[str] = []
    reply = ExtractionReply.model_validate({"facts": [slip]}, context={**reply_context(request()), "notes": notes})
    got = reply.facts[0].model_dump()
    assert {k: got[k] for k in fixed} == fixed
    assert notes == ([note] if note else [])


def test_assistant_facts_are_accepted_when_requested() -> None:
    req = request(speakers=frozenset({"user", "assistant"}))
    reply = parse(req, fact(), fact(speaker="assistant", sources=[2], text="Booked Alice an aisle seat"))
    assert [f.speaker for f in reply.facts] == ["user", "assistant"]


def test_speakers_follow_the_ids_of_the_add() -> None:
    assert speakers_for(user_id="u", agent_id=None) == {"user"}
    assert speakers_for(user_id=None, agent_id=None) == {"user"}
    assert speakers_for(user_id="u", agent_id="a") == {"user", "assistant"}
    assert speakers_for(user_id=None, agent_id="a") == {"assistant"}


def test_request_refuses_ambiguous_refs() -> None:
    with pytest.raises(ValidationError, match="refs must be unique"):
        request(candidates=[Candidate(ref=0, id=uuid4(), text="a"), Candidate(ref=0, id=uuid4(), text="b")])


def test_followup_reconciles_ref_less_facts_with_other_memories() -> None:
    req = request()
    reply = parse(req, fact(), fact(action="NOOP", ref=0, text="Lives in Osaka"))
    pending = facts_without_ref(reply)
    assert [f.text for f in pending] == ["Went to Tokyo"]
    other = Candidate(ref=0, id=uuid4(), text="Plans a trip to Tokyo in March 2025")
    req2 = req.model_copy(update={"candidates": [other]})
    msgs = build_followup_prompt(req2, pending)
    assert msgs[0]["content"] == FOLLOWUP_SYSTEM
    text = str(msgs[1]["content"])
    assert "ref 0: Plans a trip to Tokyo in March 2025" in text
    assert '{"text": "Went to Tokyo", "speaker": "user", "sources": [1], "categories": []}' in text
    assert "Observation date: 2025-03-14" in text
    assert UUID_RE.search(json.dumps(msgs)) is None
    follow = parse(req2, fact(action="UPDATE", ref=0, text="Went to Tokyo in March 2025"))
    assert follow.facts[0].ref == 0
    with pytest.raises(ValidationError, match="ref 2 is not one"):
        parse(req2, fact(action="NOOP", ref=2))  # refs of the first prompt are not valid here


def test_catalogue_accepts_mem0_wire_lists_and_falls_back_to_defaults() -> None:
    assert catalogue(None) == DEFAULT_CATEGORIES
    assert catalogue([]) == DEFAULT_CATEGORIES
    assert catalogue([{"Wine ": "wines  they like"}, {"cheese": "cheeses"}]) == {
        "wine": "wines they like",
        "cheese": "cheeses",
    }
    assert catalogue({"work": "jobs"}) == {"work": "jobs"}


def test_harmless_shape_slips_are_accepted_without_a_repair() -> None:
    req = request()
    bare = ExtractionReply.model_validate_json(json.dumps([fact(sources=1)]), context=reply_context(req))
    assert bare.facts[0].sources == [1]
