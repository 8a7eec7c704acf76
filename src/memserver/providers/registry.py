"""Build the configured providers by name, importing vendor adapters lazily."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memserver.config import Settings
from memserver.providers.embedder.base import Embedder


@dataclass
class Providers:
    embedder: Embedder

    async def aclose(self) -> None:
        await self.embedder.aclose()


def model_cache_dir(settings: Settings) -> Path:
    return settings.embedder.cache_dir or settings.embedded.data_dir / "models"


def build_embedder(settings: Settings) -> Embedder:
    e = settings.embedder
    if e.provider == "local":
        from memserver.providers.embedder.local import LocalEmbedder

        if e.dim != LocalEmbedder.dim:
            raise ValueError(f"the local embedder produces {LocalEmbedder.dim} dimensions, not {e.dim}")
        return LocalEmbedder(
            model_cache_dir(settings),
            quantized=e.quantized,
            threads=e.threads,
            cache_size=e.cache_size,
            cache_max_bytes=e.cache_max_bytes,
            cache_max_text_chars=e.cache_max_text_chars,
        )
    from memserver.providers.embedder.openai import OpenAIEmbedder

    return OpenAIEmbedder(
        base_url=e.base_url,
        api_key=e.api_key.get_secret_value() if e.api_key else None,
        model=e.model,
        dim=e.dim,
        timeout_s=e.timeout_s,
        max_batch=e.max_batch,
    )


def build_providers(settings: Settings) -> Providers:
    from memserver.providers.instrumented import InstrumentedEmbedder

    return Providers(embedder=InstrumentedEmbedder(build_embedder(settings)))
