"""Review finding 4: the embedding cache is bounded by bytes, keyed by a hash of model and text, and
skips long texts (before: 4096 entries of any size, keyed by the plaintext, shared by every model)."""

from __future__ import annotations

import numpy as np
import pytest

from harness import MODEL_CACHE
from memserver.providers.embedder.cache import ENTRY_OVERHEAD, EmbeddingCache
from memserver.providers.embedder.local import LocalEmbedder

ENTRY = 384 * 4 + ENTRY_OVERHEAD


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    emb = LocalEmbedder(MODEL_CACHE, cache_max_bytes=10 * ENTRY, cache_max_text_chars=500)
    return emb


async def test_long_texts_are_not_cached(embedder: LocalEmbedder) -> None:
    embedder._cache.clear()
    await embedder.embed([f"{i} " + "long text " * 10_000 for i in range(3)])
    assert len(embedder._cache) == 0


async def test_cache_is_bounded_by_bytes(embedder: LocalEmbedder) -> None:
    embedder._cache.clear()
    texts = [f"short text number {i}" for i in range(25)]
    first = await embedder.embed(texts)
    assert len(embedder._cache) == 10
    assert embedder._cache.bytes <= 10 * ENTRY
    calls = embedder.calls
    again = await embedder.embed(texts[-10:])  # the most recent ten are hits
    assert embedder.calls == calls
    assert np.array_equal(again, first[-10:])


def test_keys_are_digests_of_model_and_text() -> None:
    a, b = EmbeddingCache("model-a", max_bytes=10 * ENTRY), EmbeddingCache("model-b", max_bytes=10 * ENTRY)
    ka, kb = a.key("alice's secret"), b.key("alice's secret")
    assert ka is not None
    assert kb is not None
    assert ka != kb
    assert len(ka) == 32
    assert b"secret" not in ka
    a.put(ka, np.ones(384, dtype=np.float32))
    assert a.get(ka) is not None
    assert a.get(kb) is None


def test_disabled_cache_keeps_nothing() -> None:
    c = EmbeddingCache("m", max_bytes=0)
    assert c.key("x") is None
