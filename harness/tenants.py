"""A fresh org + project + API key, created straight in the database (no admin API exists yet)."""

from __future__ import annotations

import uuid

from memserver.services import admin
from memserver.storage.db import Database


async def new_tenant(database_url: str, org: str, project: str) -> tuple[uuid.UUID, str]:
    """Create `project` (in `org`) with one key; returns (project id, plaintext key)."""
    db = Database(database_url)
    try:
        pid, key = await admin.create_tenant_with_key(db, org, project)
        return uuid.UUID(str(pid)), key
    finally:
        await db.dispose()
