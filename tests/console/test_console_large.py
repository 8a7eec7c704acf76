"""A large graph in the console (correctness; its timing is bench.console_render's): 2 000 relations of one
entity over 1 500 distinct pairs, written in SQL as fixture data. The picture draws one edge per pair, the
relations table pages through all of them, and the summary counts current and retired ones."""

from __future__ import annotations

import re

from playwright.async_api import expect
from sqlalchemy import text

from harness.server import LiveServer
from memserver.domain.relations import name_key
from memserver.storage.db import Database
from tests.console.scripted_console import browser, chromium, console_llm, llm_console_server, watched_llm
from tests.console.test_console import Watched, sign_in

__all__ = ["browser", "chromium", "console_llm", "llm_console_server", "watched_llm"]

PAIRS = 1500
RELATIONS = 2000


async def seed_graph(db: Database, project_id: str) -> None:
    names = ["alice"] + [f"Person {i}" for i in range(PAIRS)]
    async with db.transaction() as conn:
        await conn.execute(
            text(
                "INSERT INTO graph_nodes (project_id, user_id, name, key, type, aliases) "
                "SELECT :p, 'alice', n, k, 'person', '{}' FROM unnest(CAST(:names AS text[]), CAST(:keys AS text[])) "
                "AS x(n, k)"
            ),
            {"p": project_id, "names": names, "keys": [name_key(n) for n in names]},
        )
        # relation g: alice -> Person (g % 1500), 'knows' or 'works_with'; every fourth one retired 100 days ago
        await conn.execute(
            text(
                """INSERT INTO graph_relations (id, project_id, user_id, source_id, relationship, target_id,
                                                valid_at, created_at, invalid_at, expired_at)
                   SELECT gen_random_uuid(), :p, 'alice', a.id, CASE WHEN g < :pairs THEN 'knows' ELSE 'works_with' END,
                          t.id, now() - interval '400 days', now() - interval '400 days',
                          CASE WHEN g % 4 = 0 THEN now() - interval '100 days' END,
                          CASE WHEN g % 4 = 0 THEN now() - interval '100 days' END
                   FROM generate_series(0, :n - 1) g
                   JOIN graph_nodes a ON a.project_id = :p AND a.name = 'alice'
                   JOIN graph_nodes t ON t.project_id = :p AND t.name = 'Person ' || (g % :pairs)"""
            ),
            {"p": project_id, "n": RELATIONS, "pairs": PAIRS},
        )


async def test_a_2k_relation_graph_draws_every_pair_and_pages_its_table(
    watched_llm: Watched, llm_console_server: LiveServer, tenant: tuple[str, str], db: Database
) -> None:
    await seed_graph(db, tenant[0])
    page = watched_llm.page
    await sign_in(watched_llm, tenant[1])
    await page.goto(f"{llm_console_server.url}/console#/graph?etype=user_id&eid=alice")
    svg = page.locator("svg#graph-svg")
    await expect(svg.locator("desc")).to_have_text(
        re.compile(rf"alice: {RELATIONS} relations, {RELATIONS - 500} current, 500 retired, as of now"), timeout=30_000
    )
    await expect(svg.locator("line.edge")).to_have_count(PAIRS)  # one edge per pair, parallel relations merged
    await expect(svg.locator("line.edge.retired")).to_have_count(retired_pairs())
    await expect(svg.locator("g.node")).to_have_count(PAIRS + 1)
    await watched_llm.shot("70-graph-2k")

    rows = page.locator("#graph-relations-table tbody tr")
    pager = page.get_by_role("navigation", name="Relations pages")
    await expect(rows).to_have_count(100)
    await expect(pager).to_contain_text(f"Page 1 of {RELATIONS // 100}")
    first = await rows.first.get_attribute("data-id")
    await pager.get_by_role("button", name="Next →").click()
    await expect(pager).to_contain_text(f"Page 2 of {RELATIONS // 100}")
    await expect(rows).to_have_count(100)
    assert await rows.first.get_attribute("data-id") != first


def retired_pairs() -> int:
    """Pairs none of whose relations hold now: g and g + 1500 share a pair; g % 4 == 0 are retired."""
    held = {g % PAIRS for g in range(RELATIONS) if g % 4}
    return PAIRS - len(held)
