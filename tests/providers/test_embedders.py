"""Embedders behind one port: the local all-MiniLM-L6-v2 (ONNX) and any OpenAI-compatible API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import MODEL_CACHE
from memserver.providers.embedder.local import LocalEmbedder
from memserver.providers.embedder.openai import OpenAIEmbedder
from memserver.providers.errors import ProviderError, ProviderTimeout
from tests.fakes.openai_server import FakeOpenAI, fake_embedding, running

REFERENCE = json.loads((Path(__file__).parent / "minilm_reference.json").read_text())


@pytest.fixture(scope="module")
def fp32() -> LocalEmbedder:
    return LocalEmbedder(MODEL_CACHE, quantized=False)


@pytest.fixture(scope="module")
def int8() -> LocalEmbedder:
    return LocalEmbedder(MODEL_CACHE, quantized=True)


def test_fp32_onnx_graph_reproduces_sentence_transformers(fp32: LocalEmbedder) -> None:
    """The graph built from the safetensors weights computes the same embeddings as the reference."""
    got = fp32.embed_sync(REFERENCE["texts"])
    want = np.asarray(REFERENCE["embeddings"], dtype=np.float32)
    assert got.shape == (3, 384)
    assert np.abs(got - want).max() < 1e-5


def test_int8_stays_close_to_the_reference(int8: LocalEmbedder) -> None:
    got = int8.embed_sync(REFERENCE["texts"])
    want = np.asarray(REFERENCE["embeddings"], dtype=np.float32)
    cosines = (got * want).sum(axis=1)
    assert cosines.min() > 0.98
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)


async def test_embeddings_are_deterministic_whatever_else_is_embedded(int8: LocalEmbedder) -> None:
    text = REFERENCE["texts"][1]
    alone = (await int8.embed([text]))[0]
    int8._cache.clear()
    crowded = (await int8.embed(["short", text, "a much longer sentence " * 20]))[1]
    assert np.array_equal(alone, crowded)


async def test_similar_texts_are_closer_than_unrelated_ones(int8: LocalEmbedder) -> None:
    a, b, c = await int8.embed(["I live in Austin, Texas.", "My home is in Austin.", "I am allergic to peanuts."])
    assert float(a @ b) > float(a @ c) + 0.3


@pytest.mark.parametrize("floats_only", [False, True], ids=["base64", "floats"])
async def test_openai_compatible_embedder_batches_and_normalises(floats_only: bool) -> None:
    """Vectors come back as asked (base64 float32) or as lists of floats from servers that ignore the format."""
    with running(FakeOpenAI(dim=8, floats_only=floats_only)) as fake:
        emb = OpenAIEmbedder(base_url=fake.url, api_key="k", model="m", dim=8, timeout_s=5, max_batch=2)
        texts = ["one", "two", "three"]
        got = await emb.embed(texts)
        await emb.aclose()
    assert len(fake.embedding_requests()) == 2  # 2 + 1 texts
    assert fake.embedding_requests()[0]["body"]["model"] == "m"
    assert fake.embedding_requests()[0]["body"]["encoding_format"] == "base64"
    assert np.allclose(got, np.asarray([fake_embedding(t, 8) for t in texts]), atol=1e-6)


async def test_openai_failures_become_provider_errors_after_retries() -> None:
    with running(FakeOpenAI(dim=8, fail_next=10)) as fake:
        emb = OpenAIEmbedder(base_url=fake.url, api_key="k", model="m", dim=8, timeout_s=5)
        with pytest.raises(ProviderError) as exc:
            await emb.embed(["x"])
        await emb.aclose()
    assert exc.value.status_code == 502
    assert len(fake.embedding_requests()) == 3  # the SDK's own retries


async def test_openai_transient_failure_is_retried_transparently() -> None:
    with running(FakeOpenAI(dim=8, fail_next=1)) as fake:
        emb = OpenAIEmbedder(base_url=fake.url, api_key="k", model="m", dim=8, timeout_s=5)
        got = await emb.embed(["x"])
        await emb.aclose()
    assert np.allclose(got[0], fake_embedding("x", 8), atol=1e-6)


async def test_wrong_dimension_is_an_error() -> None:
    with running(FakeOpenAI(dim=8, wrong_dim_next=1)) as fake:
        emb = OpenAIEmbedder(base_url=fake.url, api_key="k", model="m", dim=8, timeout_s=5)
        with pytest.raises(ProviderError, match="dimensions"):
            await emb.embed(["x"])
        await emb.aclose()


async def test_timeout_is_a_provider_timeout() -> None:
    with running(FakeOpenAI(dim=8, hang_next=10, hang_s=3)) as fake:
        emb = OpenAIEmbedder(base_url=fake.url, api_key="k", model="m", dim=8, timeout_s=0.3)
        with pytest.raises(ProviderTimeout):
            await emb.embed(["x"])
        await emb.aclose()
