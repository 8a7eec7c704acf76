"""The one error of document reading: its message is always our own words, so clients may see it."""

from __future__ import annotations

from memserver.providers.errors import ProviderError


class DocumentError(ProviderError):
    """A document part could not be read or was refused (the message says why, in our words)."""

    status_code = 400
    code = "document_unreadable"

    def __init__(self, message: str):
        super().__init__(message, public=True)  # always our own words
