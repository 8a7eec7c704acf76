"""Errors raised by provider adapters, translated from vendor SDK errors.

Messages say what failed in our words; they never carry the provider's raw error text, URLs or keys,
because they reach API clients as the `detail` of an error response.
"""

from __future__ import annotations


class ProviderError(Exception):
    """An LLM or embedding provider failed; status_code is what the API answers."""

    status_code = 502
    code = "provider_error"

    def __init__(self, message: str = "", *, public: bool = False):
        super().__init__(message)
        self.public = public  # the message is the adapter's own words: clients may see it
        # What the requests answered before the failure cost (the LLM adapter sets its `Usage` here): a failed
        # generation still spent tokens, and the job's usage counts them.
        self.usage: object | None = None


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


_PUBLIC_MESSAGES = {
    502: "The embedding or LLM provider returned an error.",
    503: "The embedding or LLM provider is unavailable.",
    504: "The embedding or LLM provider did not answer in time.",
}


def public_message(exc: ProviderError) -> str:
    """What a client may see of a provider failure: the upstream's own text (which can quote a key
    suffix or internal hosts) belongs in the server log only. An adapter that writes its message in
    its own words (what failed, never the provider's text, URL or key) marks it `public`."""
    if exc.public:
        return str(exc)
    return _PUBLIC_MESSAGES.get(exc.status_code, _PUBLIC_MESSAGES[502])
