"""The in-process counter: one API process, or limits per replica."""

from __future__ import annotations

from memserver.providers.ratelimit.base import Count, current_window


class InProcessCounter:
    """Counts in this process only (one API process, or limits per replica)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, subject: str, window_s: int) -> Count:
        index, reset = current_window(window_s)
        seen, used = self._counts.get(subject, (index, 0))
        used = used + 1 if seen == index else 1
        self._counts[subject] = (index, used)
        if len(self._counts) > 100_000:  # subjects are resolved keys and projects; drop stale windows
            self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
        return Count(used, reset)

    async def aclose(self) -> None:
        return None
