"""The embedder port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class Embedder(Protocol):
    """Turns texts into unit-length vectors of a fixed dimension."""

    dim: int
    name: str

    async def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed texts; returns an array of shape (len(texts), dim), rows L2-normalised."""
        ...

    async def aclose(self) -> None: ...


def normalize_rows(arr: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: NDArray[np.float32] = (arr / norms).astype(np.float32, copy=False)
    return unit
