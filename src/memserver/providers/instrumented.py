"""Provider ports wrapped with Prometheus timing and error counts (the registry applies them)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from memserver import metrics
from memserver.providers.embedder.base import Embedder
from memserver.providers.rerank.base import Reranker, RerankScore, Spent

T = TypeVar("T")


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "code", None) or type(exc).__name__)


class InstrumentedEmbedder:
    """An Embedder that records latency, texts and errors; everything else is the wrapped one's."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.dim = inner.dim
        self.name = inner.name

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        started = time.perf_counter()
        try:
            out = await self.inner.embed(texts)
        except Exception as exc:
            metrics.PROVIDER_LATENCY.labels("embedder", self.name, "error").observe(time.perf_counter() - started)
            metrics.PROVIDER_ERRORS.labels("embedder", self.name, _code(exc)).inc()
            raise
        metrics.PROVIDER_LATENCY.labels("embedder", self.name, "ok").observe(time.perf_counter() - started)
        metrics.PROVIDER_ITEMS.labels("embedder", self.name).inc(len(texts))
        return out

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, attr: str) -> Any:  # calls, workers, embed_sync... of the wrapped embedder
        return getattr(self.inner, attr)


class InstrumentedLLM:
    """An LLM port (`generate(messages, response_model)`) with the same latency and error metrics."""

    def __init__(self, inner: Any, name: str):
        self.inner = inner
        self.name = name

    async def generate(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            out = await self.inner.generate(*args, **kwargs)
        except Exception as exc:
            metrics.PROVIDER_LATENCY.labels("llm", self.name, "error").observe(time.perf_counter() - started)
            metrics.PROVIDER_ERRORS.labels("llm", self.name, _code(exc)).inc()
            raise
        metrics.PROVIDER_LATENCY.labels("llm", self.name, "ok").observe(time.perf_counter() - started)
        metrics.PROVIDER_ITEMS.labels("llm", self.name).inc()
        return out

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


class InstrumentedReranker:
    """A Reranker with the same latency and error metrics (kind="reranker"); items count documents sent."""

    def __init__(self, inner: Reranker):
        self.inner = inner
        self.name = inner.name

    async def rerank(
        self, query: str, documents: Sequence[str], top_n: int, *, spent: Spent | None = None
    ) -> list[RerankScore]:
        started = time.perf_counter()
        try:
            out = await self.inner.rerank(query, documents, top_n, spent=spent)
        except BaseException as exc:  # a deadline cancels the call: counted as an error too
            metrics.PROVIDER_LATENCY.labels("reranker", self.name, "error").observe(time.perf_counter() - started)
            metrics.PROVIDER_ERRORS.labels("reranker", self.name, _code(exc)).inc()
            raise
        metrics.PROVIDER_LATENCY.labels("reranker", self.name, "ok").observe(time.perf_counter() - started)
        metrics.PROVIDER_ITEMS.labels("reranker", self.name).inc(len(documents))
        return out

    async def aclose(self) -> None:
        await self.inner.aclose()
