"""Calls one API key may have running at once, per process: a READER's share of the project's LLM.

A summary is a read (a READER may ask for one) but costs one LLM call, synchronously. Without a bound,
one READER key asking for summaries in a loop holds as many LLM requests open as it likes, and the
OWNER's adds and exports queue behind them at the model server (Ollama, vLLM and llama.cpp serve a
few requests at a time). Past the bound the call is refused at once (429), nothing is queued.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from memserver.errors import TooManyRequests


class KeySlots:
    """At most `limit` calls at once per API key in this process; one more is a 429 naming `setting`."""

    def __init__(self, limit: int, what: str, setting: str):
        self.limit = max(1, limit)
        self.what = what
        self.setting = setting
        self._held: dict[uuid.UUID, int] = {}

    @contextmanager
    def hold(self, key_id: uuid.UUID) -> Iterator[None]:
        held = self._held.get(key_id, 0)
        if held >= self.limit:
            raise TooManyRequests(
                f"This API key already has {self.limit} {self.what} running (a READER key's limit, "
                f"{self.setting}); retry when one has finished.",
                extra={"retry_after": 1},
            )
        self._held[key_id] = held + 1
        try:
            yield
        finally:
            left = self._held[key_id] - 1
            if left:
                self._held[key_id] = left
            else:
                del self._held[key_id]
