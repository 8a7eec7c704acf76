"""Whether the memories shown to the model provably include every stored memory close to a new fact (pure).

At load time each new message's k nearest memories are shown to the model. Every memory NOT shown is
then at most as similar to that message as the k-th one was (its "radius"). Cosine similarity of unit
vectors is the cosine of an angle, and angles obey the triangle inequality:

    angle(fact, x) >= angle(message, x) - angle(fact, message) >= angle(radius) - angle(fact, message)

so when angle(radius) - angle(fact, message) exceeds arccos(threshold), no unshown memory can be
`threshold`-similar to the fact, and the follow-up lookup for that fact (a database round trip, and
maybe a second LLM call) is provably unnecessary. When a message had fewer than k memories in reach, every
memory of the scope was shown: nothing can be missing.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

ALL_SHOWN = -1.0  # the radius of a message whose whole scope was shown
# pgvector computes distances in float4: keep a margin so a rounding error never proves a false "covered".
_MARGIN_RAD = 1e-3


def radius(similarities: list[float], k: int) -> float:
    """The similarity no unshown memory exceeds, given a message's k nearest (all shown)."""
    return ALL_SHOWN if len(similarities) < k else min(similarities)


def covered(fact: NDArray[np.float32], message: NDArray[np.float32], shown_radius: float, threshold: float) -> bool:
    """True when no memory outside the shown set can be at least `threshold`-similar to `fact`."""
    if shown_radius <= ALL_SHOWN:
        return True
    norm = float(np.linalg.norm(fact) * np.linalg.norm(message))
    if norm == 0.0:
        return False
    to_message = math.acos(max(-1.0, min(1.0, float(np.dot(fact, message)) / norm)))
    beyond = math.acos(max(-1.0, min(1.0, shown_radius)))
    return beyond - to_message - _MARGIN_RAD > math.acos(max(-1.0, min(1.0, threshold)))
