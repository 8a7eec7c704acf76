"""Settings: one class, MEMSERVER_ prefix, and a .env.example that documents every variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from memserver.config import Settings, env_example, normalize_async_url

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_documents_every_setting_as_generated() -> None:
    assert (ROOT / ".env.example").read_text() == env_example(), "run `make env-example`"


def test_nested_variables_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMSERVER_EMBEDDER__PROVIDER", "openai")
    monkeypatch.setenv("MEMSERVER_EMBEDDER__DIM", "1536")
    monkeypatch.setenv("MEMSERVER_DATABASE_URL", "postgres://u:p@db:5432/m")
    s = Settings()
    assert s.embedder.provider == "openai"
    assert s.embedder.dim == 1536
    assert s.async_database_url() == "postgresql+asyncpg://u:p@db:5432/m"
    assert "p@db" not in repr(s)  # secrets never print


def test_placeholder_secrets_are_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMSERVER_ENV", "prod")
    monkeypatch.setenv("MEMSERVER_LLM__API_KEY", "changeme")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://a@h/d", "postgresql+asyncpg://a@h/d"),
        ("postgres://a@h/d", "postgresql+asyncpg://a@h/d"),
        ("postgresql+psycopg://a@h/d", "postgresql+asyncpg://a@h/d"),
        ("postgresql+asyncpg://a@h/d", "postgresql+asyncpg://a@h/d"),
    ],
)
def test_database_urls_are_normalised_to_asyncpg(url: str, expected: str) -> None:
    assert normalize_async_url(url) == expected


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"MEMSERVER_RERANK__PROVIDER": "http"}, "MEMSERVER_RERANK__PROVIDER=http needs MEMSERVER_RERANK__URL"),
        (
            {"MEMSERVER_RERANK__URL": "http://127.0.0.1:8080/rerank"},
            "MEMSERVER_RERANK__URL is set but MEMSERVER_RERANK__PROVIDER is none",
        ),
        (
            {"MEMSERVER_RERANK__PROVIDER": "http", "MEMSERVER_RERANK__URL": "127.0.0.1:8080/rerank"},
            "MEMSERVER_RERANK__URL must be an http:// or https:// URL",
        ),
        ({"MEMSERVER_RERANK__PROVIDER": "llm"}, "MEMSERVER_RERANK__PROVIDER=llm needs an LLM"),
        ({"MEMSERVER_RERANK__API_KEY": "ключ"}, "MEMSERVER_RERANK__API_KEY must be printable ASCII"),
        ({"MEMSERVER_RERANK__LLM_TOP_N": "80"}, "less than or equal to 50"),
    ],
)
def test_an_inconsistent_rerank_configuration_is_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], reason: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=reason):
        Settings()


def test_consistent_rerank_configurations_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().rerank.provider == "none"  # diversification, as before
    monkeypatch.setenv("MEMSERVER_RERANK__PROVIDER", "http")
    monkeypatch.setenv("MEMSERVER_RERANK__URL", "http://gpu-box:8080/rerank")
    monkeypatch.setenv("MEMSERVER_RERANK__API", "tei")
    assert Settings().rerank.api == "tei"
    monkeypatch.setenv("MEMSERVER_RERANK__PROVIDER", "llm")
    monkeypatch.delenv("MEMSERVER_RERANK__URL")
    monkeypatch.setenv("MEMSERVER_LLM__BASE_URL", "http://127.0.0.1:11434/v1")
    assert Settings().rerank.provider == "llm"
