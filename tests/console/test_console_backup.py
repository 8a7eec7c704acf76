"""Export and import in the console (#/settings/backup): the export downloads with progress, the import into an
empty project shows its phases and restores the memories, a non-empty project shows the API's refusal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.async_api import expect

from tests.console.conftest import Watched, sign_in


async def test_export_downloads_with_progress_and_import_restores(
    watched: Watched, live_server: str, make_tenant: Callable[[], tuple[str, str]], tmp_path: Path
) -> None:
    _, source = make_tenant()
    _, target = make_tenant()
    _, from_mem0 = make_tenant()
    texts = [f"Alice fact number {i}." for i in range(5)]
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {source}"}, timeout=30) as c:
        for t in texts:
            r = await c.post(
                "/v3/memories/add/",
                json={"messages": [{"role": "user", "content": t}], "user_id": "alice", "infer": False},
            )
            assert r.status_code == 200, r.text

    await sign_in(watched, source)
    page = watched.page
    await page.goto(f"{live_server}/console#/settings/backup")
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Export project").click()
    download = await info.value
    saved = tmp_path / "export.jsonl"
    await download.save_as(saved)
    lines = [json.loads(x) for x in saved.read_text().splitlines() if x.strip()]
    assert lines[0]["record"] == "header"
    assert lines[0]["format"] == "memserver-export"
    assert sorted(x["memory"] for x in lines if x["record"] == "memory") == sorted(texts)
    bar = page.locator("#export-progress")
    assert await bar.evaluate("b => b.value === b.max && b.max > 0")
    assert await bar.evaluate("b => b.max") == saved.stat().st_size
    await expect(page.locator("#export-progress-label")).to_contain_text("Export ready")
    await expect(page.locator("#status")).to_contain_text("Exported")
    await watched.shot("50-backup-exported")

    # the same file into the non-empty source project: the API's 409, nothing imported
    await page.locator("#import-file").set_input_files(saved)
    await page.get_by_role("button", name="Import file").click()
    await expect(page.locator("#error")).to_contain_text("(409)")
    await expect(page.locator("#error")).to_contain_text("not empty")
    await watched.shot("51-backup-import-refused")

    # into an empty project: progress phases, then the counts; the memories are there
    await page.get_by_role("button", name="Sign out").click()
    await sign_in(watched, target)
    await page.goto(f"{live_server}/console#/settings/backup")
    await page.locator("#import-file").set_input_files(saved)
    await page.get_by_role("button", name="Import file").click()
    await expect(page.locator("#import-result")).to_contain_text("Import completed", timeout=60_000)
    await expect(page.locator("#import-result")).to_contain_text("5 memor")
    # the server's NDJSON phases, as the page listed them
    await expect(page.locator("#import-log li")).to_have_text(
        ["Uploaded", "Embeddings: all carried by the file", "Writing everything in one transaction", "Import completed"]
    )
    bar = page.locator("#import-progress")
    assert await bar.evaluate("b => b.value === b.max")
    await watched.shot("52-backup-imported")

    await page.locator("#import-result").get_by_role("link", name="See the memories").click()
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {target}"}, timeout=30) as c:
        got = (await c.post("/v2/memories/", json={"filters": {"user_id": "alice"}})).json()
    restored = got["results"] if isinstance(got, dict) else got
    assert sorted(m["memory"] for m in restored) == sorted(texts)

    # a Mem0 get_all dump carries no vectors: the page counts the embedding up to the total
    dump = tmp_path / "mem0.json"
    dump.write_text(json.dumps({"results": [{"memory": f"Bob fact {i}.", "user_id": "bob"} for i in range(3)]}))
    await page.get_by_role("button", name="Sign out").click()
    await sign_in(watched, from_mem0)
    await page.goto(f"{live_server}/console#/settings/backup")
    await page.locator("#import-file").set_input_files(dump)
    await page.get_by_role("button", name="Import file").click()
    await expect(page.locator("#import-result")).to_contain_text("3 memor", timeout=60_000)
    await expect(page.locator("#import-log li[data-phase=embedding]")).to_have_text("Embedding memories: 3 of 3")
    await watched.shot("53-backup-imported-mem0-dump")
