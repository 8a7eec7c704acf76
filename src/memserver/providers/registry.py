"""Build the configured providers by name, importing vendor adapters lazily."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from memserver.config import Settings
from memserver.providers.documents.pdf import PdfParser
from memserver.providers.documents.reader import DocumentReader
from memserver.providers.embedder.base import Embedder
from memserver.providers.graph_mirror.base import GraphMirror
from memserver.providers.instrumented import InstrumentedEmbedder, InstrumentedLLM, InstrumentedReranker
from memserver.providers.llm.base import LLM
from memserver.providers.net import SystemResolver
from memserver.providers.rerank.base import Reranker
from memserver.providers.rerank.breaker import Breaker
from memserver.providers.rerank.http import HttpReranker
from memserver.providers.webhooks.sender import WebhookSender


@dataclass
class Providers:
    embedder: Embedder
    llm: LLM | None = None  # None when no LLM endpoint is configured (infer=true cannot extract)
    documents: DocumentReader = field(default_factory=DocumentReader)
    graph_mirror: GraphMirror | None = None  # Neo4j, when configured (Postgres always holds the graph)
    webhooks: WebhookSender = field(default_factory=WebhookSender)  # deliveries, under the outbound URL guard
    reranker: Reranker | None = None  # a /rerank server, when MEMSERVER_RERANK__PROVIDER=http
    # Per process, for the configured reranker (the /rerank server or the LLM ranking): see services/rerank.py.
    rerank_breaker: Breaker = field(default_factory=lambda: Breaker(3, 30.0))

    async def aclose(self) -> None:
        await self.embedder.aclose()
        if self.reranker is not None:
            await self.reranker.aclose()
        if self.graph_mirror is not None:
            await self.graph_mirror.aclose()
        if self.llm is not None:
            await self.llm.aclose()


def model_cache_dir(settings: Settings) -> Path:
    return settings.embedder.cache_dir or settings.embedded.data_dir / "models"


def build_embedder(settings: Settings) -> Embedder:
    e = settings.embedder
    if e.provider == "local":
        # Deferred, like every adapter here: only the configured one is imported (ONNX Runtime, ~0.4 s).
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
    # Deferred: the openai SDK (~0.8 s to import) only when an OpenAI-compatible embedder is configured.
    from memserver.providers.embedder.openai import OpenAIEmbedder

    return OpenAIEmbedder(
        base_url=e.base_url,
        api_key=e.api_key.get_secret_value() if e.api_key else None,
        model=e.model,
        dim=e.dim,
        timeout_s=e.timeout_s,
        max_batch=e.max_batch,
    )


def build_llm(settings: Settings) -> LLM | None:
    """The configured LLM, or None when neither a base URL nor an API key is set."""
    s = settings.llm
    if not s.configured:
        return None
    # Deferred: the openai SDK only when an LLM is configured.
    from memserver.providers.llm.openai import OpenAILLM

    return OpenAILLM(
        base_url=s.base_url,
        api_key=s.api_key.get_secret_value() if s.api_key else None,
        model=s.model,
        timeout_s=s.timeout_s,
        max_retries=s.max_retries,
        temperature=s.temperature,
        seed=s.seed,
        vision=s.vision,
        structured_output=s.structured_output,
        system_role=s.system_role,
        max_tokens=s.max_tokens,
        reasoning_effort=s.reasoning_effort,
    )


def build_graph_mirror(settings: Settings) -> GraphMirror | None:
    """The Neo4j mirror when MEMSERVER_GRAPH__NEO4J_URL is set (the driver is imported only then)."""
    g = settings.graph
    if not g.neo4j_url:
        return None
    # Deferred: neo4j is an optional package (the `neo4j` extra).
    from memserver.providers.graph_mirror.neo4j import Neo4jGraphMirror

    password = g.neo4j_password.get_secret_value() if g.neo4j_password else None
    return Neo4jGraphMirror(g.neo4j_url, g.neo4j_user, password, g.neo4j_database, timeout_s=g.neo4j_timeout_s)


def build_reranker(settings: Settings) -> Reranker | None:
    """The /rerank server's adapter when MEMSERVER_RERANK__PROVIDER=http (the LLM reranker is the LLM's)."""
    r = settings.rerank
    if r.provider != "http" or r.url is None:
        return None
    return HttpReranker(
        url=r.url,
        api=r.api,
        api_key=r.api_key.get_secret_value() if r.api_key else None,
        model=r.model,
        timeout_s=r.timeout_s,
        max_doc_chars=r.max_doc_chars,
    )


def build_providers(settings: Settings) -> Providers:
    llm = build_llm(settings)
    reranker = build_reranker(settings)
    d = settings.documents
    resolver = SystemResolver()
    documents = DocumentReader(
        allow_private=d.allow_private_urls,
        max_bytes=d.max_bytes,
        max_chars=d.max_chars,
        timeout_s=d.timeout_s,
        max_parts=d.max_parts,
        max_total_chars=d.max_total_chars,
        deadline_s=d.deadline_s,
        max_images=d.max_images,
        max_image_bytes=d.max_image_bytes,
        pdf=PdfParser(
            max_pages=d.pdf_max_pages,
            cpu_s=d.pdf_cpu_s,
            memory_mb=d.pdf_memory_mb,
            timeout_s=d.pdf_timeout_s,
            concurrency=d.pdf_concurrency,
        ),
        allowed_networks=tuple(d.allowed_networks),
        max_redirects=d.max_redirects,
        resolver=resolver,
    )
    return Providers(
        embedder=InstrumentedEmbedder(build_embedder(settings)),
        llm=None if llm is None else InstrumentedLLM(llm, llm.name),
        documents=documents,
        graph_mirror=build_graph_mirror(settings),
        webhooks=WebhookSender(settings.webhooks, resolver),
        reranker=None if reranker is None else InstrumentedReranker(reranker),
        rerank_breaker=Breaker(settings.rerank.breaker_failures, settings.rerank.breaker_cooldown_s),
    )
