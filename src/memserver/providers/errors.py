"""Errors raised by provider adapters, translated from vendor SDK errors."""

from __future__ import annotations


class ProviderError(Exception):
    """An LLM or embedding provider failed; status_code is what the API answers."""

    status_code = 502
    code = "provider_error"


class ProviderUnavailable(ProviderError):
    status_code = 503
    code = "provider_unavailable"


class ProviderTimeout(ProviderError):
    status_code = 504
    code = "provider_timeout"


_PUBLIC_MESSAGES = {
    502: "The embedding or LLM provider returned an error.",
    503: "The embedding or LLM provider is unavailable.",
    504: "The embedding or LLM provider did not answer in time.",
}


def public_message(exc: ProviderError) -> str:
    """What a client may see of a provider failure: the upstream's own text (which can quote a key
    suffix or internal hosts) belongs in the server log only."""
    return _PUBLIC_MESSAGES.get(exc.status_code, _PUBLIC_MESSAGES[502])
