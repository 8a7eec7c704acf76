"""Small shared value types."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key's project (every query is scoped to it) and its org."""

    org_id: uuid.UUID
    project_id: uuid.UUID
    key_id: uuid.UUID
    user_email: str
    org_name: str
    project_name: str
