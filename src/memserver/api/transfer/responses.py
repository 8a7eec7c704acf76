"""What an import answers, and its progress lines."""

from __future__ import annotations

import logging
from typing import Any

from memserver import jsonio
from memserver.api.kit.wire import Message
from memserver.errors import MemserverError
from memserver.providers.errors import ProviderError, public_message

log = logging.getLogger("memserver.http")


class Imported(Message):
    imported: dict[str, int]


def line(obj: dict[str, Any]) -> bytes:
    return jsonio.dumps(obj) + b"\n"


def failure_line(exc: BaseException) -> bytes:
    """An import that failed after its progress began: `{"error", "status"}` in memserver's own words (the
    upstream's text, SQL and internal names go to the log only), as a JSON error body says it."""
    if isinstance(exc, MemserverError):
        return line({"error": exc.message, "status": exc.status_code})
    if isinstance(exc, ProviderError):
        log.warning("provider failure during an import: %s", exc)
        return line({"error": public_message(exc), "status": exc.status_code})
    log.error("an import failed", exc_info=exc)
    return line({"error": "Internal server error", "status": 500})
