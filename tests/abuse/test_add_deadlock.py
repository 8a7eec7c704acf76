"""Review finding 5: two multi-message adds with the same texts in opposite order, at the same time, in
the same scope. Inserting in message order makes each take the other's unique-index entries in the
opposite order: Postgres detects a deadlock (40P01) and one add failed with a 500. Inserted in a
stable (hash) order, they serialise instead; the memories still keep their message order."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from memserver.errors import ServiceUnavailable
from memserver.storage.db import Database, retry_transient
from tests.api.helpers import ADD_V3, verbatim_add_body

ROUNDS = 8
TEXTS = 40


async def test_opposite_order_adds_do_not_deadlock(live_server: str, tenant: tuple[str, str], db: Database) -> None:
    statuses: list[int] = []
    async with httpx.AsyncClient(
        base_url=live_server, headers={"Authorization": f"Token {tenant[1]}"}, timeout=60
    ) as client:
        for r in range(ROUNDS):
            texts = [f"round {r} fact {i}" for i in range(TEXTS)]
            replies = await asyncio.gather(
                *(
                    client.post(ADD_V3, json=verbatim_add_body(*order, user_id="shared"))
                    for order in (texts, texts[::-1], texts, texts[::-1])
                )
            )
            statuses += [x.status_code for x in replies]
            for x in replies:
                assert x.status_code == 200, x.text
                events = [e["event"] for e in x.json()["results"]]
                assert len(events) == TEXTS
                assert set(events) <= {"ADD", "NOOP"}
    assert statuses == [200] * (4 * ROUNDS)
    # every text stored exactly once, in the order of the add that stored it
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT memory, seq, created_at, event_id FROM memories WHERE project_id = :p ORDER BY seq"),
                {"p": tenant[0]},
            )
        ).all()
    assert len(rows) == ROUNDS * TEXTS
    by_event: dict[object, list[tuple[int, object, str]]] = {}
    for row in rows:
        by_event.setdefault(row.event_id, []).append((row.seq, row.created_at, row.memory))
    for items in by_event.values():
        index = [int(m.rsplit(" ", 1)[1]) for _, _, m in items]  # message order = fact number or its reverse
        assert index == sorted(index) or index == sorted(index, reverse=True)
        assert [c for _, c, _ in items] == sorted(c for _, c, _ in items)


async def test_seq_follows_message_order(api: httpx.Client, tenant: tuple[str, str], db: Database) -> None:
    texts = [f"ordered message {i:02d}" for i in range(30)]
    r = await asyncio.to_thread(api.post, ADD_V3, json=verbatim_add_body(*texts, user_id="one"))
    assert r.status_code == 200
    async with db.connect() as conn:
        got = (
            await conn.execute(text("SELECT memory FROM memories WHERE project_id = :p ORDER BY seq"), {"p": tenant[0]})
        ).scalars()
        assert list(got) == texts


class _PgError(Exception):
    def __init__(self, sqlstate: str):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _dbapi_error(sqlstate: str) -> DBAPIError:
    return DBAPIError("INSERT ...", {}, _PgError(sqlstate))


async def test_deadlocks_and_serialization_failures_are_retried_a_bounded_number_of_times() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise _dbapi_error("40P01" if calls == 1 else "40001")
        return "done"

    assert await retry_transient(flaky) == "done"
    assert calls == 3

    async def always() -> str:
        raise _dbapi_error("40P01")

    with pytest.raises(ServiceUnavailable):
        await retry_transient(always, attempts=3)

    async def other() -> str:
        raise _dbapi_error("23505")

    with pytest.raises(DBAPIError):
        await retry_transient(other)
