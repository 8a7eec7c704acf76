"""Schemathesis over memserver's own OpenAPI document, authenticated, against a running server:
no 5xx, and every response documented (status code, content type and body schema).

The run's exit code alone would pass a run that reached nothing (a bad key answers 401 everywhere, a
broken document yields no operations): its NDJSON report is read back, and the test asserts that every
operation of the document was called and that answers other than errors came back from a stated floor
of operations.

Bounded: a fixed number of examples per operation and a time budget (deterministic generation), so it
finishes in about two minutes on a loaded 2-core machine. Run longer with MEMSERVER_FUZZ_EXAMPLES=200
MEMSERVER_FUZZ_SECONDS=1200.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.server import served
from tests.fakes.openai_server import FakeOpenAI, echo_extractor, running
from tests.fakes.platform_llm import platform_script

EXAMPLES = os.environ.get("MEMSERVER_FUZZ_EXAMPLES", "12")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Operations that must answer 2xx at least once in the run. Measured with the defaults (deterministic
# generation): 23 of 67 operations, 113 of 17,712 answers; the rest are 4xx, as they should be for requests
# without an entity id or naming ids that do not exist (no operation has examples for the run to start from).
MIN_OPERATIONS_WITH_2XX = 20


def _any_prompt(body: dict[str, Any]) -> str:
    """The scripted model answers every prompt memserver sends: extraction (echo) and the platform's tasks."""
    system = str((body.get("messages") or [{}])[0].get("content", ""))
    return platform_script(body) if system.startswith("TASK:") else echo_extractor(body)


@pytest.fixture(scope="module")
def fuzz_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fully configured memserver (its LLM is the scripted model), so every route does its real work."""
    log = tmp_path_factory.mktemp("fuzz") / "memserver.log"
    with (
        running(FakeOpenAI(chat_script=_any_prompt)) as fake,
        served(database_url, log, MEMSERVER_LLM__BASE_URL=fake.url) as server,
    ):
        yield server.url


@pytest.fixture
def live_server(fuzz_server: str) -> str:
    return fuzz_server


def test_schemathesis_finds_no_server_error_and_no_undocumented_response(
    live_server: str, tenant: tuple[str, str], tmp_path: Path
) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency (make install)"
    cmd = [
        st,
        "run",
        f"{live_server}/openapi.json",
        "--header",
        f"Authorization: Token {tenant[1]}",
        "--checks",
        CHECKS,
        "--max-examples",
        EXAMPLES,
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        # One worker: with two, Hypothesis describes its filter lambdas by ast.parse-ing schemathesis' source in
        # both threads at once, and CPython 3.11's parser is not thread-safe there ("AST constructor recursion
        # depth mismatch", a Runtime Error on POST /api/v1/orgs/organizations once the responses have schemas).
        "1",
        "--request-timeout",
        "30",
        "--max-time",
        os.environ.get("MEMSERVER_FUZZ_SECONDS", "100"),
        "--no-shrink",
        "--continue-on-failure",
        "--generation-deterministic",
        "--warnings",
        "off",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(tmp_path / "run.ndjson"),
    ]
    env = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"}
    # cwd: schemathesis keeps an example database (.schemathesis/) in its working directory
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    out = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"schemathesis found problems (exit {done.returncode}):\n{out[-20000:]}")
    answers = statuses_by_operation(tmp_path / "run.ndjson")
    spec = httpx.get(f"{live_server}/openapi.json", timeout=30).json()
    documented = {f"{m.upper()} {path}" for path, item in spec["paths"].items() for m in item if m != "parameters"}
    assert len(documented) > 50, documented
    assert set(answers) == documented, f"operations never called: {sorted(documented - set(answers))}"
    total = sum((c for c in answers.values()), Counter[int]())
    with_2xx = sorted(op for op, c in answers.items() if c[2])
    assert total[2] > 0, total
    assert len(with_2xx) >= MIN_OPERATIONS_WITH_2XX, (len(with_2xx), with_2xx, dict(total))


def statuses_by_operation(report: Path) -> dict[str, Counter[int]]:
    """`METHOD /path` -> answers per status class (2, 4, 5) of every request the run sent (NDJSON report)."""
    out: dict[str, Counter[int]] = defaultdict(Counter)
    for line in report.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for interaction in (recorder.get("interactions") or {}).values():
            if interaction.get("response"):
                out[recorder["label"]][interaction["response"]["status_code"] // 100] += 1
    return dict(out)
