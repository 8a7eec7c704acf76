"""A bounded in-process cache of embeddings.

Bounded by bytes (vectors plus keys and bookkeeping), not by entries; keyed by a SHA-256 of the model
name and the text, so no text is kept in memory and two models never share a vector; texts longer than
`max_text_chars` are not cached (they are rarely repeated and would dominate the budget).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

# Bookkeeping per entry beyond the vector's own bytes: the 32-byte digest as a bytes object, the
# OrderedDict node and the ndarray header, measured with sys.getsizeof / tracemalloc (~250 bytes).
ENTRY_OVERHEAD = 256


class EmbeddingCache:
    def __init__(self, model: str, *, max_bytes: int, max_entries: int = 0, max_text_chars: int = 2_000):
        self._prefix = model.encode() + b"\x00"
        self.max_bytes = max_bytes
        self.max_entries = max_entries  # 0 = bounded by bytes only
        self.max_text_chars = max_text_chars
        self._entries: OrderedDict[bytes, NDArray[np.float32]] = OrderedDict()
        self.bytes = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def key(self, text: str) -> bytes | None:
        """The cache key of a text, or None when the text is not cached (too long, or cache disabled)."""
        if not self.enabled or len(text) > self.max_text_chars:
            return None
        return hashlib.sha256(self._prefix + text.encode("utf-8", "surrogatepass")).digest()

    def get(self, key: bytes) -> NDArray[np.float32] | None:
        vec = self._entries.get(key)
        if vec is not None:
            self._entries.move_to_end(key)
        return vec

    def put(self, key: bytes, vector: NDArray[np.float32]) -> None:
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        vec = np.array(vector, dtype=np.float32, copy=True)  # never a view pinning a larger batch array
        cost = vec.nbytes + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        self._entries[key] = vec
        self.bytes += cost
        while self.bytes > self.max_bytes or (self.max_entries and len(self._entries) > self.max_entries):
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.nbytes + ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
