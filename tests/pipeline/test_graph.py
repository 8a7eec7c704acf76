"""Graph decisions without I/O: relation replies, the graph prompt section, entity resolution."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import numpy as np

from memserver.pipeline import reconcile
from memserver.pipeline.prompts.extract import ExtractionReply, relations_of, reply_model
from memserver.pipeline.prompts.extract import build as build_prompt
from memserver.pipeline.prompts.extract import context as reply_context
from memserver.pipeline.prompts.graph import ExtractedRelation
from memserver.pipeline.relation_extract import (
    GraphContext,
    KnownNode,
    ShownRelation,
    name_key,
    relationship_key,
    resolve,
)
from memserver.pipeline.types import ExtractionRequest, InMessage
from tests.fakes.openai_server import approx_tokens

OBSERVED = datetime(2025, 3, 14, tzinfo=UTC)


def request(graph: GraphContext | None) -> ExtractionRequest:
    return ExtractionRequest(
        messages=[InMessage(index=0, role="user", text="I moved to Berlin in March.")],
        observed_at=OBSERVED,
        graph=graph,
    )


def shown(ref: int, source: str, relationship: str, target: str) -> ShownRelation:
    return ShownRelation(ref=ref, id=uuid4(), source=source, relationship=relationship, target=target)


def reply(req: ExtractionRequest, *relations: dict[str, Any]) -> ExtractionReply:
    data = {"facts": [{"text": "Lives in Berlin", "speaker": "user", "sources": [0], "relations": list(relations)}]}
    return reply_model(req).model_validate_json(json.dumps(data), context=reply_context(req))


def test_relations_are_normalised_and_dates_read_leniently() -> None:
    req = request(GraphContext(user_name="alice"))
    r = (
        reply(
            req,
            {
                "source": " alice ",
                "relationship": "Lives In",
                "target": "Berlin",
                "target_type": "City",
                "valid_from": "2025-03",
            },
        )
        .facts[0]
        .relations[0]
    )
    assert (r.source, r.relationship, r.target, r.source_type, r.target_type) == (
        "alice",
        "lives_in",
        "Berlin",
        "entity",
        "city",
    )
    assert r.valid_from == datetime(2025, 3, 1, tzinfo=UTC)
    bad_date = ExtractedRelation.model_validate(
        {"source": "a", "relationship": "r", "target": "b", "valid_from": "soon"}
    )
    assert bad_date.valid_from is None  # dropped, not worth a repair round trip
    assert relationship_key("worksAt") == "works_at"
    assert name_key("  José   Álvarez! ") == "jose alvarez"


def test_replaces_names_only_relations_that_were_shown() -> None:
    """A ref that was not shown ends nothing: it is removed with a note, and the relation stands."""
    req = request(GraphContext(user_name="alice", relations=[shown(1, "alice", "lives_in", "Lisbon")]))
    ok = reply(req, {"source": "alice", "relationship": "lives_in", "target": "Berlin", "replaces": [1]})
    assert relations_of(ok.facts[0])[0].replaces == [1]
    notes: list[str] = []
    data = {
        "facts": [
            {
                "text": "Lives in Berlin",
                "speaker": "user",
                "sources": [0],
                "relations": [{"source": "alice", "relationship": "lives_in", "target": "Berlin", "replaces": [2, 1]}],
            }
        ]
    }
    bad = reply_model(req).model_validate(data, context={**reply_context(req), "notes": notes})
    assert relations_of(bad.facts[0])[0].replaces == [1]
    assert notes == ["replaces [2]: not refs of the existing relations shown; removed from a relation"]


def test_relations_are_ignored_when_the_graph_is_off_and_its_schema_stays_compact() -> None:
    req = request(None)
    assert relations_of(reply(req, {"source": "alice", "relationship": "lives_in", "target": "Berlin"}).facts[0]) == []
    assert reply_model(req) is ExtractionReply
    assert "relations" not in json.dumps(ExtractionReply.model_json_schema())


def test_the_prompt_grows_only_with_enable_graph() -> None:
    off = build_prompt(request(None))
    on = build_prompt(request(GraphContext(user_name="alice", relations=[shown(1, "alice", "lives_in", "Lisbon")])))
    assert "Graph" not in off[0]["content"] + off[1]["content"]
    assert "Graph memory is on" in on[0]["content"]
    assert 'Graph: the user is the entity "alice".' in on[1]["content"]
    assert "rel 1: alice -[lives_in]-> Lisbon" in on[1]["content"]
    # the graph instructions cost a bounded number of tokens per add
    extra = approx_tokens(on[0]["content"]) - approx_tokens(off[0]["content"])
    assert extra < 260, extra


def test_relations_follow_their_fact_through_reconciliation() -> None:
    req = request(GraphContext(user_name="alice"))
    rep = reply(req, {"source": "alice", "relationship": "lives_in", "target": "Berlin"})
    [decision] = reconcile.decide(req, rep)
    assert [(r.source, r.target) for r in decision.relations] == [("alice", "Berlin")]


def vec(text: str) -> Any:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(16)
    return v / np.linalg.norm(v)


def test_resolution_by_name_alias_spelling_and_meaning() -> None:
    near = vec("jonathan")
    known = [
        KnownNode(1, "Jonathan Smith", "person", ("Jon",), near),
        KnownNode(2, "New York City", "place", (), vec("nyc")),
    ]
    out = resolve(
        [
            ("jonathan smith", "person", None),  # same normalised name
            ("Jon", "entity", None),  # alias; a generic type is compatible with any
            ("Jonathon Smith", "person", near * 0.9 + vec("x") * 0.1),  # spelling, not unrelated in meaning
            ("NYC", "place", vec("nyc")),  # meaning only, very close
            ("Jonathan Smith", "place", None),  # same name, incompatible type: a new node
            ("Maria", "person", vec("maria")),
            ("maria", "person", None),  # resolves to the node this batch created
        ],
        known,
    )
    assert [(r.node_id, r.canonical, r.alias) for r in out] == [
        (1, "Jonathan Smith", False),
        (1, "Jonathan Smith", False),
        (1, "Jonathan Smith", True),
        (2, "New York City", True),
        (-1, "Jonathan Smith", False),
        (-2, "Maria", False),
        (-2, "Maria", False),
    ]


def test_different_names_stay_apart() -> None:
    known = [KnownNode(1, "Jane Doe", "person", (), vec("jane"))]
    [r] = resolve([("John Doe", "person", vec("john"))], known)
    assert r.node_id == -1


def test_a_followup_reconciliation_keeps_the_first_replys_relations() -> None:
    from memserver.pipeline.types import Candidate

    req = request(GraphContext(user_name="alice"))
    first = reply(req, {"source": "alice", "relationship": "lives_in", "target": "Berlin"})
    other = Candidate(ref=1, id=uuid4(), text="Lives in Lisbon")
    req2 = req.model_copy(update={"candidates": [other]})
    second = ExtractionReply.model_validate_json(
        json.dumps(
            {"facts": [{"text": "Lives in Berlin", "speaker": "user", "sources": [0], "action": "UPDATE", "ref": 1}]}
        ),
        context=reply_context(req2),
    )
    [decision] = reconcile.decide(req, first, (req2, second))
    assert decision.op == "UPDATE"
    assert [(r.source, r.relationship, r.target) for r in decision.relations] == [("alice", "lives_in", "Berlin")]
