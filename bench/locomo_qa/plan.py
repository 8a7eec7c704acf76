"""What a run does: the LoCoMo adds and questions it selects, in the order Mem0's evaluation sends them.

Ingest follows Mem0's `evaluation/src/memzero/add.py`: two namespaces per conversation, `user_id =
"<speaker>_<idx>"` (`idx`: the conversation's position in the data file). Each session is mirrored: in speaker
A's namespace A's turns are `user` and B's `assistant`, the reverse in B's; each message reads
"<speaker>: <text>"; the session's messages go in batches of 2, each batch one add with the session date as
`metadata.timestamp` (the string Mem0's answer prompt prints) and as the add's `timestamp` (unix seconds).
Adds are ordered session by session, the two namespaces' batches interleaved (A0, B0, A1, B1, ...): each
namespace keeps its own order, and a `--max-adds` slice holds both speakers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BATCH = 2  # messages per add, as Mem0's evaluation (MemoryADD batch_size=2)
NAMESPACES = ("A", "B")
ADVERSARIAL_GOLD = "Not mentioned in the conversation"  # category 5 has no answer, only an adversarial one


@dataclass(frozen=True)
class Add:
    key: str  # "<conv>:<ns>:<i>", unique in the data file
    conv: str
    ns: str  # "A" | "B"
    user_id: str
    index: int  # position in its namespace
    session: int
    date: str  # the session's date as the data writes it ("1:56 pm on 8 May, 2023")
    ts: int  # the same date in unix seconds (UTC)
    messages: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Question:
    key: str  # "<conv>:q<n>", n = position in the conversation's qa list
    conv: str
    category: int
    question: str
    gold: str
    users: tuple[str, str]  # (speaker A's user_id, speaker B's user_id)


@dataclass
class Plan:
    adds: list[Add] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)
    categories: tuple[int, ...] = (1, 2, 3, 4)

    def namespaces(self) -> dict[str, list[Add]]:
        """user_id -> its adds, in order (each namespace is ingested sequentially)."""
        out: dict[str, list[Add]] = {}
        for a in self.adds:
            out.setdefault(a.user_id, []).append(a)
        return out


def session_time(text: str) -> datetime:
    return datetime.strptime(text, "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def conversation_adds(sample: dict[str, Any], idx: int) -> list[Add]:
    conv = sample["conversation"]
    sid = sample["sample_id"]
    speakers = {"A": conv["speaker_a"], "B": conv["speaker_b"]}
    users = {ns: f"{name}_{idx}" for ns, name in speakers.items()}
    counters = dict.fromkeys(NAMESPACES, 0)
    out: list[Add] = []
    n = 1
    while f"session_{n}" in conv:
        date = conv[f"session_{n}_date_time"]
        ts = int(session_time(date).timestamp())
        mirrored: dict[str, list[dict[str, str]]] = {ns: [] for ns in NAMESPACES}
        for turn in conv[f"session_{n}"]:
            if turn["speaker"] not in speakers.values():
                raise ValueError(f"{sid} session {n}: unknown speaker {turn['speaker']!r}")
            content = f"{turn['speaker']}: {turn['text']}"
            for ns, own in speakers.items():
                mirrored[ns].append({"role": "user" if turn["speaker"] == own else "assistant", "content": content})
        batches = {ns: [msgs[i : i + BATCH] for i in range(0, len(msgs), BATCH)] for ns, msgs in mirrored.items()}
        for pair in zip(*(batches[ns] for ns in NAMESPACES), strict=True):
            for ns, messages in zip(NAMESPACES, pair, strict=True):
                i = counters[ns]
                counters[ns] += 1
                out.append(Add(f"{sid}:{ns}:{i}", sid, ns, users[ns], i, n, date, ts, tuple(messages)))
        n += 1
    return out


def conversation_questions(sample: dict[str, Any], idx: int, categories: tuple[int, ...]) -> list[Question]:
    conv = sample["conversation"]
    users = (f"{conv['speaker_a']}_{idx}", f"{conv['speaker_b']}_{idx}")
    out = []
    for n, qa in enumerate(sample["qa"]):
        category = int(qa["category"])
        if category not in categories:
            continue
        gold = qa.get("answer")
        gold = ADVERSARIAL_GOLD if gold is None and category == 5 else str(gold)
        out.append(Question(f"{sample['sample_id']}:q{n}", sample["sample_id"], category, qa["question"], gold, users))
    return out


def build(
    data: list[dict[str, Any]],
    *,
    conversations: list[str] | None,
    categories: tuple[int, ...],
    max_adds: int | None,
    max_questions: int | None,
) -> Plan:
    """The run's adds and questions; `max_adds` / `max_questions` cut each conversation's (a slice)."""
    known = [s["sample_id"] for s in data]
    missing = sorted(set(conversations or []) - set(known))
    if missing:
        raise SystemExit(f"not in the data file: {', '.join(missing)} (it has {', '.join(known)})")
    plan = Plan(categories=categories)
    for idx, sample in enumerate(data):
        if conversations and sample["sample_id"] not in conversations:
            continue
        plan.conversations.append(sample["sample_id"])
        plan.adds += conversation_adds(sample, idx)[:max_adds]
        plan.questions += conversation_questions(sample, idx, categories)[:max_questions]
    return plan


def load(path: Path) -> tuple[list[dict[str, Any]], str]:
    """The data file and its sha256 (the run's manifest pins it)."""
    raw = path.read_bytes()
    return json.loads(raw), hashlib.sha256(raw).hexdigest()
