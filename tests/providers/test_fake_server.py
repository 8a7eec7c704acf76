"""The fake OpenAI server started as its own process, as the benches do."""

from __future__ import annotations

import json
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


MEM0_PROMPT = (
    "## Summary\n\n\n## Last k Messages\nuser: earlier\n\n## Existing Memories\n[]\n\n"
    "## New Messages\nuser: Caroline: I went to a support group.\nIt was powerful.\n"
    "assistant: Melanie: That sounds great!\nuser: Caroline: Thanks.\n\n"
    "## Observation Date\n2023-05-08\n\n# Output:"
)


def test_fake_server_answers_mem0s_prompt_in_mem0s_format_and_counts_usage() -> None:
    """--mem0-echo: one Mem0 memory per user message; GET /v1/_stats sums requests, usage and handling time."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port)]
    cmd += ["--echo", "--mem0-echo", "--keep-alive"]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            proc.stdout.readline()
            with httpx.Client() as client:  # one kept-alive connection for every request
                mem0 = client.post(
                    f"{url}/chat/completions",
                    json={
                        "model": "m",
                        "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": MEM0_PROMPT}],
                    },
                )
                ours = client.post(
                    f"{url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": PROMPT}]}
                )
                stats = client.get(f"{url}/_stats").json()
        finally:
            proc.terminate()
            proc.wait(10)
    assert mem0.http_version == "HTTP/1.1"
    assert json.loads(mem0.json()["choices"][0]["message"]["content"]) == {
        "memory": [
            {"id": "0", "text": "Caroline: I went to a support group.\nIt was powerful."},
            {"id": "1", "text": "Caroline: Thanks."},
        ]
    }
    assert ours.json()["choices"][0]["message"]["content"] == ECHOED  # memserver's prompt: the memserver echo
    usage = [r.json()["usage"] for r in (mem0, ours)]
    assert stats["chat_requests"] == 2
    assert stats["prompt_tokens"] == sum(u["prompt_tokens"] for u in usage)
    assert stats["completion_tokens"] == sum(u["completion_tokens"] for u in usage)
    assert stats["prompt_chars"] > len(MEM0_PROMPT) + len(PROMPT)
    assert stats["chat_handling_ms"] > 0
