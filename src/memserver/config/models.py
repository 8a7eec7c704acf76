"""The models memserver calls and what it feeds them: embedder, LLM, documents, reranker, Dream."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator

from memserver.config.fields import Networks


class EmbedderSettings(BaseModel):
    provider: Literal["local", "openai"] = Field(
        "local",
        description="'local' = offline all-MiniLM-L6-v2; 'openai' = any OpenAI-compatible /embeddings.",
    )
    model: str = Field("all-MiniLM-L6-v2", description="Embedding model name sent to the OpenAI-compatible API.")
    dim: int = Field(384, description="Vector dimension; must match the migrated schema.")
    base_url: str | None = Field(None, description="Base URL of the OpenAI-compatible API (e.g. http://host/v1).")
    api_key: SecretStr | None = Field(None, description="API key for the OpenAI-compatible embeddings API.")
    cache_dir: Path | None = Field(
        None, description="Local embedder: where the built ONNX model is cached (default <data_dir>/models)."
    )
    quantized: bool = Field(
        True, description="Local embedder: int8 weights (about 2x faster on CPU, cosine ~0.99 to fp32)."
    )
    threads: int = Field(0, description="Local embedder: texts embedded in parallel (0 = number of cores).")
    max_batch: int = Field(256, description="OpenAI-compatible embedder: most texts sent in one request.")
    cache_size: int = Field(4096, description="Most embeddings kept in the in-process LRU cache (0 disables it).")
    cache_max_bytes: int = Field(
        16 * 1024 * 1024, description="Memory the embedding cache may use, in bytes (vectors and keys)."
    )
    cache_max_text_chars: int = Field(2_000, description="Texts longer than this are embedded without being cached.")
    timeout_s: float = Field(30.0, description="Timeout of one embeddings request (OpenAI-compatible).")


class LLMSettings(BaseModel):
    base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible chat completions API (e.g. http://host:11434/v1)."
    )
    api_key: SecretStr | None = Field(
        None, description="API key for the LLM endpoint. The LLM is enabled when this or base_url is set."
    )
    model: str = Field("gpt-4.1-mini", description="Chat model used for memory extraction.")
    timeout_s: float = Field(60.0, description="Timeout of one LLM request, in seconds.")
    max_retries: int = Field(
        2, description="Retries of a failed LLM request (timeouts, 429, 5xx), with the SDK's exponential backoff."
    )
    temperature: float | None = Field(
        0.0,
        description="Sampling temperature (0 keeps extraction repeatable; unset: not sent). Not sent to a model "
        "found to refuse it (OpenAI's reasoning models).",
    )
    seed: int | None = Field(
        0,
        description="Seed sent with every request, for repeatable replies where the server accepts one (unset: none).",
    )
    vision: bool = Field(False, description="The model reads images; when false, image parts are not sent.")
    reader_summaries_at_once: int = Field(
        2,
        ge=1,
        description="Summaries (POST /v1/summary/, one LLM call each) a READER key may have running at once per "
        "API process; one more is a 429, so a read-only key cannot hold the project's LLM.",
    )
    structured_output: Literal["auto", "json_schema", "json_object", "text"] = Field(
        "auto",
        description="How JSON replies are requested: 'auto' tries json_schema and falls back to json_object, then "
        "to plain text with the schema in the instructions, for servers that refuse them (llama.cpp, some Ollama "
        "versions, LM Studio); or force one mode.",
    )
    system_role: Literal["auto", "system", "merge"] = Field(
        "auto",
        description="'auto' sends a system message and, for a model or server found to refuse the system role, "
        "puts the instructions into the first user message instead; 'system' or 'merge' forces either.",
    )
    max_tokens: int | None = Field(
        4096,
        description="Ceiling of the tokens one LLM reply may use; each request asks for what its reply should "
        "need, up to this (unset: max_tokens is not sent and the server's default applies).",
    )
    reasoning_effort: str | None = Field(
        None,
        description="Sent as reasoning_effort when set (e.g. 'low'; 'none' turns thinking off on Ollama's /v1).",
    )

    @property
    def configured(self) -> bool:
        """An LLM endpoint was set up (infer=true can extract memories)."""
        return self.base_url is not None or self.api_key is not None


class DocumentSettings(BaseModel):
    allow_private_urls: bool = Field(
        False,
        description="Fetch pdf_url/txt_url/mdx_url parts from private, loopback and link-local addresses too "
        "(off: only public http(s) hosts, so an add cannot make the server probe its own network).",
    )
    max_bytes: int = Field(5_000_000, description="Largest document (download or base64) read from a message part.")
    max_chars: int = Field(50_000, description="Text kept from one document part (the rest is cut, with a note).")
    max_parts: int = Field(
        5, description="Most document parts (pdf_url, txt_url, mdx_url) in one add; more is refused (400)."
    )
    max_total_chars: int = Field(
        100_000,
        description="Document text one add may give the model, all its documents together (the rest is cut, "
        "with a note on the add's event).",
    )
    deadline_s: float = Field(
        30.0,
        description="One deadline for fetching and parsing all documents of an add, in seconds; past it the "
        "add is refused (400, or FAILED when asynchronous) and nothing is written.",
    )
    max_images: int = Field(5, description="Most image parts in one add (sent to a vision model); more is a 400.")
    max_image_bytes: int = Field(
        2_000_000, description="Largest inline (base64) image of an add, in bytes; larger is refused (400)."
    )
    pdf_max_pages: int = Field(500, description="Pages read from one PDF (the rest is cut, with a note).")
    pdf_cpu_s: int = Field(
        10, description="CPU seconds the child process that parses one PDF may use; then it is killed (400)."
    )
    pdf_memory_mb: int = Field(
        512, description="Address space of the child process that parses one PDF, in MB; more is refused (400)."
    )
    pdf_timeout_s: float = Field(
        20.0, description="Wall-clock seconds one PDF may take to parse; then its child process is killed (400)."
    )
    pdf_concurrency: int = Field(
        2, description="PDFs parsed at once per process (each in its own child process); the others wait."
    )
    timeout_s: float = Field(
        15.0,
        description="One deadline for a whole document download (resolution, connection, redirects and body), "
        "in seconds; a server that drips bytes is cut off at it.",
    )
    allowed_networks: Networks = Field(
        default_factory=list,
        description='Networks (CIDRs, JSON list, e.g. ["10.0.5.0/24"]) documents may be fetched from although '
        "private, while every other internal address stays refused.",
    )
    max_redirects: int = Field(
        3, ge=0, description="Redirects followed when fetching a document; each target is checked like the URL."
    )


class RerankSettings(BaseModel):
    """What `rerank: true` on a search does (README, "Reranking")."""

    provider: Literal["none", "http", "llm"] = Field(
        "none",
        description="'http': a /rerank server (MEMSERVER_RERANK__URL) orders the best hits by relevance; 'llm': "
        "the configured LLM ranks them in one call; 'none': diversification (hits that restate a better hit "
        "move down), with no model.",
    )
    url: str | None = Field(
        None,
        description="The full URL of the /rerank endpoint (e.g. http://gpu-box:8080/rerank, "
        "https://api.cohere.com/v2/rerank); nothing is appended to it.",
    )
    api: Literal["cohere", "voyage", "tei"] = Field(
        "cohere",
        description="The server's request and reply shape: 'cohere' (Cohere, Jina, vLLM, Infinity, LiteLLM, "
        "OpenVINO: documents, top_n, results), 'voyage' (top_k, data), 'tei' (Hugging Face "
        "text-embeddings-inference: texts, a bare list).",
    )
    api_key: SecretStr | None = Field(None, description="Sent as `Authorization: Bearer <key>` when set.")
    model: str | None = Field(None, description="The reranking model to ask for (unset: not sent).")
    top_n: int = Field(
        30,
        ge=1,
        le=100,
        description="'http': the best hits sent to the reranker, at least top_k; 'llm' shows the LLM the best "
        "llm_top_n of them.",
    )
    timeout_s: float = Field(
        2.0, gt=0, description="'http': one deadline for the rerank request; past it the hits keep the hybrid order."
    )
    max_doc_chars: int = Field(1_000, ge=1, description="'http': characters of each memory sent to the reranker.")
    llm_top_n: int = Field(
        20, ge=2, le=50, description="'llm': best hits the LLM ranks in its one call; the others follow them."
    )
    llm_timeout_s: float = Field(
        8.0, gt=0, description="'llm': one deadline for the ranking call; past it the hits keep the hybrid order."
    )
    breaker_failures: int = Field(
        3, ge=1, description="Consecutive reranker failures after which it is not called for breaker_cooldown_s."
    )
    breaker_cooldown_s: float = Field(
        30.0, ge=0, description="Seconds a failing reranker is left alone; then one search tries it again."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RerankSettings:
        if self.provider == "http" and not self.url:
            raise ValueError(
                "MEMSERVER_RERANK__PROVIDER=http needs MEMSERVER_RERANK__URL, the full URL of the /rerank endpoint"
            )
        if self.url and self.provider != "http":
            raise ValueError(
                f"MEMSERVER_RERANK__URL is set but MEMSERVER_RERANK__PROVIDER is {self.provider}: "
                "set it to http to use that server, or unset the URL"
            )
        if self.url and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError("MEMSERVER_RERANK__URL must be an http:// or https:// URL")
        key = self.api_key.get_secret_value() if self.api_key else ""
        if not all(" " < c <= "~" for c in key):
            raise ValueError("MEMSERVER_RERANK__API_KEY must be printable ASCII without spaces (an HTTP header)")
        return self


class DreamSettings(BaseModel):
    """Dream synthesis: scheduled runs that distil a user's memories into pattern memories (opt-in per project)."""

    enabled: bool = Field(
        True,
        description="Run the Synthesis scheduler (projects still opt in with reflection_enabled); false stops "
        "scheduled runs on every process that has it false (runs queued by hand still run).",
    )
    tick_s: float = Field(
        300.0,
        gt=0,
        description="How often the scheduler looks for users due a run (once per interval across all processes).",
    )
    cadence_s: float = Field(
        604_800.0, ge=0, description="Each user is synthesized at most once per this many seconds (Pro: 7 days)."
    )
    min_memories: int = Field(
        20, ge=2, description="A user needs at least this many eligible memories before a run considers them."
    )
    max_memories: int = Field(
        200,
        ge=2,
        le=1000,
        description="Most memories one run shows the model (the user's newest eligible ones), which bounds its prompt.",
    )
    max_patterns_per_run: int = Field(10, ge=1, le=50, description="Most patterns one run adds or updates.")
    max_users_per_tick: int = Field(100, ge=1, description="Most runs one scheduler tick queues.")
    max_open_per_project: int = Field(
        20, ge=1, description="Most Dream runs a project may have waiting or running (back-pressure)."
    )
    max_attempts: int = Field(3, ge=1, description="Attempts of a failing run before it ends FAILED with its reason.")
    retry_backoff_s: float = Field(
        30.0, ge=0, description="Delay before a failed run's first retry; doubles each time."
    )

    @model_validator(mode="after")
    def _window_holds_the_minimum(self) -> DreamSettings:
        if self.max_memories < self.min_memories:
            raise ValueError("MEMSERVER_DREAM__MAX_MEMORIES must be at least MEMSERVER_DREAM__MIN_MEMORIES")
        return self
