"""The reranker port: a query and documents in, relevance scores of the documents out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from memserver.providers.llm.base import Usage

# Told what a ranking cost when it cost LLM calls (the listwise LLM), so the project's usage counts them.
Spent = Callable[[Usage], object]


@dataclass(frozen=True)
class RerankScore:
    """The relevance of the document at `index` of the request, on a 0..1 scale."""

    index: int
    score: float


class Reranker(Protocol):
    """Scores documents by how well each answers a query (a cross-encoder server, a listwise LLM...)."""

    name: str  # the label search hits carry: "cohere", "voyage", "tei", "llm"

    async def rerank(
        self, query: str, documents: Sequence[str], top_n: int, *, spent: Spent | None = None
    ) -> list[RerankScore]:
        """Scores of (at most `top_n` of) the documents, best first; raises a ProviderError when it cannot.
        `spent` is told the LLM usage of the ranking, if it made LLM calls (failed ones included)."""
        ...

    async def aclose(self) -> None: ...
