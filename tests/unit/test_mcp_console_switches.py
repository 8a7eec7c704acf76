"""`/mcp` and `/console` can each be turned off; the console page ships only same-origin assets."""

from __future__ import annotations

import re

import httpx
from pydantic import SecretStr

from memserver.config import Settings
from memserver.console import STATIC
from memserver.main import create_app


def _settings(**groups: dict[str, bool]) -> Settings:
    return Settings(env="test", database_url=SecretStr("postgresql://u@127.0.0.1:1/none"), **groups)  # type: ignore[arg-type]


async def _status(settings: Settings, path: str) -> int:
    # No lifespan: routing and the static files need no database.
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return (await client.get(path)).status_code


async def test_console_and_mcp_are_served_by_default_and_can_be_turned_off() -> None:
    assert await _status(_settings(), "/console") == 200
    assert await _status(_settings(), "/console/console.css") == 200
    off = _settings(console={"enabled": False}, mcp={"enabled": False})
    assert await _status(off, "/console") == 404
    assert await _status(off, "/console/console.js") == 404
    assert await _status(off, "/mcp") == 404


def test_the_console_loads_nothing_from_another_origin() -> None:
    files = [f for f in STATIC.rglob("*") if f.is_file() and f.suffix in (".html", ".js", ".css")]
    assert len(files) > 20, files  # index.html, console.css, the modules and the vendored d3 files
    for f in files:
        text = f.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f.name
        assert "@import" not in text, f.name
        assert not re.search(r"fetch\(\s*[\"'`]https?:", text), f.name
