"""How a memory is laid out on disk, where it decides the speed of every search.

A conversational turn with its 384-dimension embedding, tsvector and metadata is a little over
Postgres' default 2 kB TOAST threshold; stored out of line, every exact similarity scan pays a TOAST
lookup per memory. Rows of that size must stay inline.
"""

from __future__ import annotations

import httpx
from sqlalchemy import text

from memserver.storage.db import Database

TURN = (
    "Caroline: I went to an LGBTQ support group yesterday and it was so powerful. The stories people "
    "shared about their transition journeys really stuck with me, and I felt accepted for who I am. "
    "It made me think about how much courage it takes to be yourself, and I want to keep going."
)


async def test_a_conversational_turn_is_stored_inline_embedding_included(aapi: httpx.AsyncClient, db: Database) -> None:
    r = await aapi.post(
        "/v3/memories/add/",
        json={
            "messages": [{"role": "user", "content": TURN}],
            "user_id": "caroline",
            "infer": False,
            "metadata": {"dia_id": "D1:3", "session": 1, "speaker": "Caroline", "topic": "support group"},
        },
    )
    assert r.status_code == 200, r.text
    memory_id = r.json()["results"][0]["id"]
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT pg_column_size(m.*) AS row_bytes, pg_column_toast_chunk_id(embedding) AS chunk "
                    "FROM memories m WHERE id = :id"
                ),
                {"id": memory_id},
            )
        ).one()
    assert row.row_bytes > 2032  # over the default TOAST threshold: the case that matters
    assert row.chunk is None  # and yet the embedding is in the heap row, not in TOAST
