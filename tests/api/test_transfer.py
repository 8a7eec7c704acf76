"""Export/import of a whole project as JSONL: a project exported and imported into an empty project gives the
same memories, search results and history (ids kept when they are free on this server, renewed otherwise);
Mem0 `get_all` dumps import too; the CLI does the same without HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from harness.server import server_env
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim

ORGS = "/api/v1/orgs/organizations"
ANY = {"OR": [{"user_id": "*"}, {"agent_id": "*"}, {"run_id": "*"}]}
QUERIES = ["What does Alice drink?", "hiking in the mountains", "Bob's allergy"]
VOLATILE = {"id", "memory_id", "owner", "event_id"}


def fill(api: httpx.Client, **where: Any) -> None:
    """Memories of two users and an agent, with metadata, categories, an update, a delete and feedback."""
    year_ago = int(time.time()) - 365 * 86400
    a = add_verbatim(
        api,
        "Alice drinks green tea.",
        "Alice hikes in the Alps.",
        metadata={"src": "chat"},
        categories=["food"],
        timestamp=year_ago,
        **where,
    )
    b = add_verbatim(api, "Bob is allergic to peanuts.", "Bob plays cello.", user_id="bob", agent_id="bot", **where)
    add_verbatim(api, "Session note.", run_id="r1", **where)
    q = {"params": where} if where else {}
    assert api.put(f"/v1/memories/{a[1]}/", json={"text": "Alice hikes in the mountains every summer."}, **q).is_success
    assert api.delete(f"/v1/memories/{b[1]}/", **q).is_success
    assert api.post("/v1/feedback/", json={"memory_id": a[0], "feedback": "POSITIVE", **where}).is_success
    assert api.patch(
        _project(api, where.get("project_id")), json={"custom_instructions": "keep food", "multilingual": True}
    ).is_success
    profiles = {
        "enabled": True,
        "entities": {
            "user": {"schema": {"type": "object", "properties": {"likes": {"type": "string", "description": "Likes"}}}}
        },
        **where,
    }
    assert api.post("/v2/profiles/settings/", json=profiles).is_success


def _project(api: httpx.Client, project_id: str | None = None) -> str:
    ping = api.get("/v1/ping/").json()
    return f"{ORGS}/{ping['org_id']}/projects/{project_id or ping['project_id']}/"


def snapshot(api: httpx.Client, *, keep_ids: bool, **where: Any) -> dict[str, Any]:
    """What a user of the project observes: memories, their history, search results, settings."""

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if keep_ids or k not in VOLATILE}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    q = {"params": where} if where else {}
    listed = api.post("/v3/memories/", json={"filters": ANY, "page_size": 100, **where}).json()["results"]
    history = {m["memory"]: api.get(f"/v1/memories/{m['id']}/history/", **q).json() for m in listed}
    searches = {
        query: [
            (h["memory"], h["score"], h["id"] if keep_ids else None)
            for h in api.post("/v3/memories/search/", json={"query": query, "filters": ANY, **where}).json()["results"]
        ]
        for query in QUERIES
    }
    project = api.get(_project(api, where.get("project_id"))).json()
    settings = (
        project["custom_instructions"],
        project["multilingual"],
        api.get("/v2/profiles/settings/", params=where).json()["entities"]["user"]["schema"],
    )
    return {
        "memories": clean(sorted(listed, key=lambda m: m["memory"])),
        "history": clean(history),
        "search": searches,
        "settings": settings,
    }


def test_round_trip_into_an_empty_project_renews_taken_ids(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    fill(api)
    before = snapshot(api, keep_ids=False)
    assert len(before["memories"]) == 4
    assert [h["event"] for h in before["history"]["Alice hikes in the mountains every summer."]] == ["ADD", "UPDATE"]
    r = api.get("/v1/memserver/export/")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(x) for x in r.content.splitlines()]
    assert lines[0]["record"] == "header"
    assert {x["record"] for x in lines} == {"header", "memory", "history", "event", "entity", "feedback"}
    assert lines[0]["project"]["settings"]["profiles"]["enabled"] is True
    assert len(next(x for x in lines if x["record"] == "memory")["embedding"]) == 384
    _, key = make_tenant()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}, timeout=60) as empty:
        done = empty.post("/v1/memserver/import/", content=r.content)
        assert done.status_code == 200, done.text
        assert done.json()["imported"]["memory"] == 4
        after = snapshot(empty, keep_ids=False)
        assert after == before
        ids_a = {m["id"] for m in api.post("/v3/memories/", json={"filters": ANY}).json()["results"]}
        ids_b = {m["id"] for m in empty.post("/v3/memories/", json={"filters": ANY}).json()["results"]}
        assert not ids_a & ids_b  # A still holds those ids: B got new ones
        assert empty.get("/v1/feedback/").json()["count"] == 1
        again = empty.post("/v1/memserver/import/", content=r.content)
        assert again.status_code == 409  # only into an empty project
    assert snapshot(api, keep_ids=False) == before  # the source is untouched


def test_restore_after_the_project_is_gone_keeps_ids(
    live_server: str, make_org: Callable[..., tuple[str, str, str]]
) -> None:
    org_id, _, key = make_org()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}, timeout=60) as owner:
        src = owner.post(f"{ORGS}/{org_id}/projects/", json={"name": "src"}).json()["project_id"]
        fill(owner, project_id=src)
        before = snapshot(owner, keep_ids=True, project_id=src)
        dump = owner.get("/v1/memserver/export/", params={"project_id": src}).content
        assert owner.delete(f"{ORGS}/{org_id}/projects/{src}/").is_success
        assert owner.post("/v1/memserver/import/", content=dump).is_success  # into `main`
        assert snapshot(owner, keep_ids=True) == before


def test_a_mem0_get_all_dump_imports(api: httpx.Client) -> None:
    dump = {
        "count": 2,
        "results": [
            {
                "id": "0b0c7d4e-8f6a-4c59-9d5b-0d2a8f2e9a11",
                "memory": "Carol collects stamps.",
                "user_id": "carol",
                "metadata": {"x": 1},
                "categories": ["hobbies"],
                "created_at": "2025-01-02T03:04:05-08:00",
                "updated_at": "2025-01-03T03:04:05-08:00",
            },
            {"id": "not-a-uuid", "memory": "Carol's agent speaks French.", "user_id": "carol", "agent_id": "aria"},
        ],
    }
    r = api.post("/v1/memserver/import/", content=orjson.dumps(dump))
    assert r.status_code == 200, r.text
    got = api.get("/v1/memories/0b0c7d4e-8f6a-4c59-9d5b-0d2a8f2e9a11/").json()
    assert (got["memory"], got["metadata"], got["categories"]) == ("Carol collects stamps.", {"x": 1}, ["hobbies"])
    assert got["created_at"].startswith("2025-01-02T11:04:05")
    hits = api.post("/v3/memories/search/", json={"query": "stamp collection", "filters": {"user_id": "carol"}})
    assert hits.json()["results"][0]["memory"] == "Carol collects stamps."
    assert [h["event"] for h in api.get(f"/v1/memories/{got['id']}/history/").json()] == ["ADD"]
    names = {(e["type"], e["name"]) for e in api.get("/v1/entities/").json()["results"]}
    assert names == {("user", "carol"), ("agent", "aria")}


def test_export_import_need_an_owner_of_that_project(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    add_verbatim(api, "private")
    pid = api.get("/v1/ping/").json()["project_id"]
    _, key = make_tenant()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}) as other:
        assert other.get("/v1/memserver/export/", params={"project_id": pid}).status_code == 403
        assert other.post("/v1/memserver/import/", params={"project_id": pid}, content=b"[]").status_code == 403
        assert other.post("/v1/memserver/import/", content=b"{nope").status_code == 400


def test_cli_export_then_import(
    api: httpx.Client,
    database_url: str,
    live_server: str,
    make_org: Callable[..., tuple[str, str, str]],
    tmp_path: Path,
) -> None:
    org_id, _, key = make_org()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}, timeout=60) as owner:
        org = owner.get(f"{ORGS}/{org_id}/").json()["name"]
        fill(owner)
        before = snapshot(owner, keep_ids=False)
        assert owner.post(f"{ORGS}/{org_id}/projects/", json={"name": "copy"}).is_success

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            res = subprocess.run(
                [sys.executable, "-m", "memserver.cli", *args],
                env=server_env(database_url, 0),
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert res.returncode == 0, res.stderr
            return res

        out = tmp_path / "main.jsonl"
        cli("export", "--org", org, "--project", "main", "-o", str(out))
        assert out.read_bytes().startswith(b'{"record":"header"')
        assert "memory=4" in cli("import", str(out), "--org", org, "--project", "copy").stdout
        copy = next(p for p in owner.get(f"{ORGS}/{org_id}/projects/").json() if p["name"] == "copy")["project_id"]
        assert snapshot(owner, keep_ids=False, project_id=copy) == before


# -- progress: the export's size, the import's own body limit and its progress lines -------------------
def big_export(n: int, *, embedded: bool = True) -> bytes:
    """A memserver export of `n` memories of one user (with embeddings of this server's size, or none)."""
    header = {"record": "header", "format": "memserver-export", "version": 1, "embedding_dim": 384}
    lines = [orjson.dumps(header)]
    for i in range(n):
        memory: dict[str, Any] = {
            "record": "memory",
            "id": str(uuid.uuid4()),
            "memory": f"Fact number {i} about the user's day.",
            "hash": f"h{i}",
            "user_id": "alice",
        }
        if embedded:
            memory["embedding"] = [((i * 7 + j) % 97) / 97 - 0.5 for j in range(384)]
        lines.append(orjson.dumps(memory))
    return b"\n".join(lines) + b"\n"


def test_the_export_is_sent_with_its_size(api: httpx.Client) -> None:
    add_verbatim(api, "Alice drinks green tea.", "Alice hikes in the Alps.")
    with api.stream("GET", "/v1/memserver/export/") as r:
        assert r.status_code == 200
        size = int(r.headers["content-length"])
        body = r.read()
    assert size == len(body) > 0
    assert orjson.loads(body.splitlines()[0])["record"] == "header"


def test_an_import_larger_than_the_general_body_limit_is_accepted(api: httpx.Client) -> None:
    """5+ MiB (the general limit is 4 MiB), sent with a length and, in another project, chunked."""
    content = big_export(700)
    assert len(content) > 5 * 1024 * 1024
    r = api.post("/v1/memserver/import/", content=content)
    assert r.status_code == 200, r.text
    assert r.json()["imported"]["memory"] == 700
    assert api.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["count"] == 700


def test_a_chunked_import_is_spooled_and_imported(live_server: str, make_tenant: Callable[[], tuple[str, str]]) -> None:
    content = big_export(600)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 65536):
            yield content[start : start + 65536]

    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {make_tenant()[1]}"}) as c:
        r = c.post("/v1/memserver/import/", content=chunks(), timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["imported"]["memory"] == 600


def ndjson(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.headers["content-type"].startswith("application/x-ndjson"), r.headers
    return [orjson.loads(x) for x in r.content.splitlines()]


def test_an_import_answers_its_progress_line_by_line(api: httpx.Client) -> None:
    r = api.post(
        "/v1/memserver/import/", content=big_export(300, embedded=False), headers={"Accept": "application/x-ndjson"}
    )
    assert r.status_code == 200, r.text
    assert ndjson(r) == [
        {"phase": "embedding", "done": 0, "total": 300},
        {"phase": "embedding", "done": 256, "total": 300},
        {"phase": "embedding", "done": 300, "total": 300},
        {"phase": "writing"},
        {
            "message": "Import completed",
            "imported": {"memory": 300, "history": 0, "event": 0, "entity": 0, "feedback": 0, "read": 0},
        },
    ]
    hits = api.post("/v3/memories/search/", json={"query": "fact number 42", "filters": {"user_id": "alice"}})
    assert hits.json()["results"][0]["memory"] == "Fact number 42 about the user's day."
    # its checks come first, as plain JSON errors
    again = api.post("/v1/memserver/import/", content=big_export(3), headers={"Accept": "application/x-ndjson"})
    assert again.status_code == 409, again.text
    assert "is not empty" in again.json()["error"]


async def test_a_failure_while_writing_writes_nothing(
    aapi: httpx.AsyncClient, tenant: tuple[str, str], db: Database
) -> None:
    """A real fault (a trigger on this project's memories) once the import has begun: the last line says so, in
    our words, and nothing of the import is in the project; without progress lines, the 500 JSON error."""
    project_id = tenant[0]
    suffix = project_id.replace("-", "_")
    async with db.transaction() as conn:
        await conn.execute(
            text(
                f"CREATE FUNCTION refuse_import_{suffix}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER refuse_import BEFORE INSERT ON memories FOR EACH ROW "
                f"WHEN (NEW.project_id = '{project_id}') EXECUTE FUNCTION refuse_import_{suffix}()"
            )
        )
    try:
        content = big_export(5, embedded=False)
        r = await aapi.post("/v1/memserver/import/", content=content, headers={"Accept": "application/x-ndjson"})
        assert r.status_code == 200
        lines = ndjson(r)
        assert lines[-2:] == [{"phase": "writing"}, {"error": "Internal server error", "status": 500}]
        assert "disk on fire" not in r.text
        plain = await aapi.post("/v1/memserver/import/", content=content)
        assert plain.status_code == 500
        assert "disk on fire" not in plain.text
    finally:
        async with db.transaction() as conn:
            await conn.execute(text("DROP TRIGGER refuse_import ON memories"))
            await conn.execute(text(f"DROP FUNCTION refuse_import_{suffix}()"))
    async with db.connect() as conn:
        for table in ("memories", "memory_history", "entities"):
            n = await conn.execute(text(f"SELECT count(*) FROM {table} WHERE project_id = :p"), {"p": project_id})
            assert n.scalar_one() == 0, table
