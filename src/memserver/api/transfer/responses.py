"""What an import answers."""

from __future__ import annotations

from memserver.api.kit.wire import Message


class Imported(Message):
    imported: dict[str, int]
