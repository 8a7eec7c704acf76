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
