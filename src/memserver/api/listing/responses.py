"""A list's items, and its v2 shapes with graph `relations`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memserver.api.graph.responses import Relation
from memserver.api.kit.wire import Out
from memserver.api.memories.responses import Memory, MemoryPage, memory_out, project_fields
from memserver.domain.principal import Principal
from memserver.domain.rows.memories import MemoryRow


class MemoriesWithRelations(Out):
    """v2 list with enable_graph (unpaged)."""

    results: list[Memory]
    relations: list[Relation]


class MemoryPageWithRelations(MemoryPage):
    """v2 list with enable_graph and page/page_size."""

    relations: list[Relation]


def page_items(rows: Sequence[MemoryRow], principal: Principal, fields: list[str] | None) -> list[dict[str, Any]]:
    return [project_fields(memory_out(r, owner=principal.user_email), fields) for r in rows]
