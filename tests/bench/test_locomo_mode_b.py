"""LoCoMo-ER mode B's bookkeeping, without a server: exchanges, provenance -> turns, scoring by coverage."""

from __future__ import annotations

from bench.locomo_data import exchanges, score_covered, score_question
from bench.locomo_infer import provenance_covers


def turn(dia_id: str, session: int) -> dict[str, object]:
    return {"dia_id": dia_id, "text": f"X: {dia_id}", "session": session, "ts": session * 100}


def test_exchanges_pair_each_sessions_turns_user_then_assistant() -> None:
    turns = [turn("D1:1", 1), turn("D1:2", 1), turn("D1:3", 1), turn("D2:1", 2), turn("D2:2", 2)]
    ex = exchanges(turns)
    assert [e["dia_ids"] for e in ex] == [["D1:1", "D1:2"], ["D1:3"], ["D2:1", "D2:2"]]
    assert [m["role"] for m in ex[0]["messages"]] == ["user", "assistant"]
    assert ex[0]["messages"][1]["content"] == "X: D1:2"
    assert [(e["session"], e["ts"]) for e in ex] == [(1, 100), (1, 100), (2, 200)]


def test_a_memory_covers_the_turns_of_its_provenance_across_adds() -> None:
    covers = provenance_covers({"e1": ["D1:1", "D1:2"], "e2": ["D1:3", "D1:4"]})
    updated = {
        "metadata": {"dia_ids": ["D1:1", "D1:2"], "session": 1},
        "provenance": {
            "sources": [{"event_id": "e1", "message_indices": [0]}, {"event_id": "e2", "message_indices": [1]}]
        },
    }
    assert covers(updated) == {"D1:1", "D1:4"}
    # an add the run does not know (another run's event): the memory's own metadata is the fallback
    foreign = {
        "metadata": {"dia_ids": ["D9:1"]},
        "provenance": {"sources": [{"event_id": "x", "message_indices": [0, 5]}]},
    }
    assert covers(foreign) == {"D9:1"}
    assert covers({"metadata": {}, "provenance": None}) == set()


def test_scoring_counts_memories_and_the_turns_they_cover() -> None:
    row = score_covered([{"a"}, set(), {"b", "c"}], ["b", "c", "z"])
    assert row["frac@1"] == 0.0
    assert row["frac@5"] == 2 / 3
    assert row["all@50"] == 0.0
    assert row["mrr"] == 1 / 3
    assert score_question(["x", "b"], ["b"]) == score_covered([{"x"}, {"b"}], ["b"])  # mode A: one turn per hit
