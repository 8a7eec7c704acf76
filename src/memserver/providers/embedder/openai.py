"""Any OpenAI-compatible /embeddings endpoint (OpenAI, Azure, Ollama, vLLM, LM Studio, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from memserver.providers.embedder.base import normalize_rows
from memserver.providers.errors import ProviderError, ProviderTimeout, ProviderUnavailable


class OpenAIEmbedder:
    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        model: str,
        dim: int,
        timeout_s: float,
        max_batch: int = 256,
    ):
        import openai

        self._openai = openai
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=2
        )
        self.model = model
        self.dim = dim
        self.name = f"openai:{model}"
        self._max_batch = max_batch

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self._max_batch):
            chunk = list(texts[start : start + self._max_batch])
            try:
                resp = await self._client.embeddings.create(model=self.model, input=chunk)
            except self._openai.APITimeoutError as exc:
                raise ProviderTimeout(f"embedding request timed out: {exc}") from exc
            except self._openai.APIConnectionError as exc:
                raise ProviderUnavailable(f"embedding endpoint unreachable: {exc}") from exc
            except self._openai.APIError as exc:
                raise ProviderError(f"embedding request failed: {exc}") from exc
            data = sorted(resp.data, key=lambda d: d.index)
            if len(data) != len(chunk):
                raise ProviderError(f"embedding endpoint returned {len(data)} vectors for {len(chunk)} inputs")
            for j, item in enumerate(data):
                if len(item.embedding) != self.dim:
                    raise ProviderError(
                        f"embedding endpoint returned {len(item.embedding)} dimensions, "
                        f"MEMSERVER_EMBEDDER__DIM is {self.dim}"
                    )
                out[start + j] = item.embedding
        return normalize_rows(out)

    async def aclose(self) -> None:
        await self._client.close()
