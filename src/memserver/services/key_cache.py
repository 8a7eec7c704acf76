"""The key cache: a short-lived LRU from key hash to `Principal`, one per process (`Runtime.keys`)."""

from __future__ import annotations

import time
from collections import OrderedDict

from memserver.domain.principal import Principal
from memserver.storage.repositories.tenants import hash_key


class KeyCache:
    """A short-lived LRU map from key hash to Principal: saves a database round trip per request."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Principal | None]:
        h = hash_key(key)
        entry = self._entries.get(h)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        self._entries.move_to_end(h)
        return True, entry[1]

    def put(self, key: str, principal: Principal | None) -> None:
        # Unknown (well-formed) keys are remembered briefly too, so repeating one cannot hammer the
        # database; a flood of distinct ones only evicts the least recently used entries.
        h = hash_key(key)
        self._entries[h] = (time.monotonic() + self.ttl_s, principal)
        self._entries.move_to_end(h)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget everything (after a change of roles or members made by this process)."""
        self._entries.clear()
