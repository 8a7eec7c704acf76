"""The reply corpus: real-shaped imperfect model replies, one defect class per file pair (see
`tests/providers/test_reply_corpus.py`), and the helpers that load them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memserver.pipeline.types import ExtractionRequest

CORPUS = Path(__file__).parent
CLASSES = sorted(p.name.removesuffix(".expected.json") for p in CORPUS.glob("*.expected.json"))


def load(name: str) -> tuple[str, dict[str, Any]]:
    return (CORPUS / f"{name}.reply.txt").read_text(encoding="utf-8"), json.loads(
        (CORPUS / f"{name}.expected.json").read_text(encoding="utf-8")
    )


def request(name: str) -> ExtractionRequest:
    return ExtractionRequest.model_validate(json.loads((CORPUS / "requests.json").read_text())[name])


def scripted(text: str, expected: dict[str, Any]) -> list[Any]:
    """The fake's replies for a class: the reply as the server sends it, then the second call's if any."""
    first: dict[str, Any] = {"content": text, "finish_reason": expected["finish_reason"]}
    first |= {k: expected[k] for k in ("reasoning_content", "reasoning") if expected.get(k)}
    return [first, *([expected["then"]] if expected.get("then") else [])]
