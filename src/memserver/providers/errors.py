"""Errors raised by provider adapters, translated from vendor SDK errors.

Messages say what failed in our words; they never carry the provider's raw error text, URLs or keys,
because they reach API clients as the `detail` of an error response.
"""

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


class ProviderRejected(ProviderError):
    """The provider refused the request itself (bad key, unknown model, request too large...)."""

    code = "provider_rejected"


class ProviderInvalidReply(ProviderError):
    """The provider answered, but not with what was asked for (even after a repair attempt)."""

    code = "provider_invalid_reply"
