"""Which entity ids a filter requires of every memory it matches (`domain.filters.entity_equalities`).

This is what the add reads from `filters` (the Python SDK sends its ids there) and what graph reads are scoped
by. The expected answers were recorded from the two readers that existed before (`api.params.flat_entity_ids`
and `services.graph.entity_ids`), which agreed on every row: only equalities count, only under the top-level
AND (an OR, a NOT, `*`, `in` and `ne` require no single id), camelCase keys are the snake_case fields, and of
two equalities on one field the last in document order wins.
"""

from __future__ import annotations

from typing import Any

import pytest

from memserver.domain.filters import entity_equalities, parse_filters

CASES: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"user_id": "alice"}, {"user_id": "alice"}),
    ({"userId": "alice", "agentId": "bot"}, {"user_id": "alice", "agent_id": "bot"}),
    ({"sessionId": "s1"}, {"run_id": "s1"}),
    ({"session_id": "s1", "run_id": "r2"}, {"run_id": "r2"}),
    ({"AND": [{"user_id": "alice"}, {"agent_id": "bot"}]}, {"user_id": "alice", "agent_id": "bot"}),
    ({"AND": {"user_id": "alice", "agent_id": "bot"}}, {"user_id": "alice", "agent_id": "bot"}),
    (
        {"AND": [{"user_id": "alice"}, {"AND": [{"run_id": "r1"}, {"app_id": "a1"}]}]},
        {"user_id": "alice", "run_id": "r1", "app_id": "a1"},
    ),
    # repeated ids: the last in document order wins, however deep
    ({"AND": [{"user_id": "alice"}, {"user_id": "bob"}]}, {"user_id": "bob"}),
    ({"AND": [{"AND": [{"user_id": "alice"}]}, {"user_id": "bob"}]}, {"user_id": "bob"}),
    ({"AND": [{"user_id": "alice"}, {"AND": [{"user_id": "bob"}]}]}, {"user_id": "bob"}),
    ({"user_id": "alice", "AND": [{"user_id": "bob"}]}, {"user_id": "bob"}),
    # OR and NOT require no single id
    ({"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}, {}),
    ({"AND": [{"agent_id": "bot"}, {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}]}, {"agent_id": "bot"}),
    ({"NOT": {"user_id": "alice"}}, {}),
    ({"AND": [{"agent_id": "bot"}, {"NOT": {"user_id": "alice"}}]}, {"agent_id": "bot"}),
    # the wildcard, operators, null
    ({"user_id": "*"}, {}),
    ({"user_id": "*", "agent_id": "bot"}, {"agent_id": "bot"}),
    ({"user_id": {"eq": "alice"}}, {"user_id": "alice"}),
    ({"user_id": {"eq": "*"}}, {}),
    ({"user_id": {"in": ["alice", "bob"]}}, {}),
    ({"user_id": {"ne": "alice"}}, {}),
    ({"user_id": {"eq": "alice", "ne": "bob"}}, {"user_id": "alice"}),
    ({"user_id": None}, {}),
    ({"user_id": 42}, {"user_id": "42"}),
    # other fields never count, not even a metadata key spelt like an id
    ({"user_id": "alice", "metadata": {"user_id": "bob"}}, {"user_id": "alice"}),
    ({"categories": ["food"], "created_at": {"gte": "2024-01-01"}}, {}),
]


@pytest.mark.parametrize(("filters", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_entity_equalities(filters: dict[str, Any], expected: dict[str, str]) -> None:
    assert entity_equalities(parse_filters(filters)) == expected


def test_no_filter_requires_no_id() -> None:
    assert entity_equalities(None) == {}
