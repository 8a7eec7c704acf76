"""The fake OpenAI server started as its own process, as the benches do."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from harness import ROOT
from harness.server import free_port

PROMPT = "Extract facts stated by: user.\n\nNew messages:\n[0] user: I like tea.\n[1] assistant: Noted."
ECHOED = '{"facts": [{"text": "I like tea.", "speaker": "user", "sources": [0], "categories": [], "action": "ADD"}]}'


def test_fake_server_runs_standalone_with_echo_and_delay() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port), "--echo", "--delay-ms", "200"]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().decode().strip() == f"fake OpenAI server on {url}"
            started = time.monotonic()
            body = {"model": "m", "messages": [{"role": "user", "content": PROMPT}]}
            r = httpx.post(f"{url}/chat/completions", json=body)
            elapsed = time.monotonic() - started
        finally:
            proc.terminate()
            proc.wait(10)
    assert elapsed >= 0.2
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == ECHOED
    assert r.json()["usage"]["prompt_tokens"] == 20  # 15 words * 1.3, rounded up
