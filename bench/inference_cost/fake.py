"""The scripted OpenAI-compatible server both modes of the benchmark talk to, as a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import ROOT
from harness.server import free_port


def start_fake(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port),
        "--echo", "--mem0-echo", "--keep-alive", "--prefix-cache",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=(workdir / "fake.log").open("wb"))
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    url = f"http://127.0.0.1:{port}/v1"
    if line != f"fake OpenAI server on {url}":
        proc.kill()
        raise RuntimeError(f"the fake LLM did not start: {line!r}")
    return proc, url


def server_env(llm_url: str, *, embedder_cache: bool, remote_embedder: bool) -> dict[str, str]:
    """The memserver settings of both modes: the fake as its LLM (and, `remote_embedder`, its embedder)."""
    env = {"MEMSERVER_LLM__BASE_URL": llm_url, "MEMSERVER_LLM__API_KEY": "sk-fake", "MEMSERVER_LLM__MODEL": "fake"}
    if not embedder_cache:
        env["MEMSERVER_EMBEDDER__CACHE_SIZE"] = "0"
    if remote_embedder:
        env.update(
            MEMSERVER_EMBEDDER__PROVIDER="openai",
            MEMSERVER_EMBEDDER__BASE_URL=llm_url,
            MEMSERVER_EMBEDDER__API_KEY="sk-fake",
            MEMSERVER_EMBEDDER__MODEL="fake-embed",
        )
    return env
