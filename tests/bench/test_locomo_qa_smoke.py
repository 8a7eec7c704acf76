"""CI smoke run of `bench.locomo_qa` (benchmarks.md §4) against the scripted OpenAI-compatible model: the bench
starts its own Postgres and memserver (whose LLM is the fake's echo extractor), ingests a slice of conv-26 with
infer=true, answers and judges 10 questions (the fake's `--qa-echo`: the top memory as the answer, a word-overlap
judge), then `--resume` after losing the log of 3 applied adds answers 5 more without sending any add again,
and a changed setting is refused. Not a score: the model is scripted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.postgres import run_dir
from tests.fakes.openai_server import FakeOpenAI, approx_tokens, running
from tests.fakes.qa_llm import ANSWER_MARK, JUDGE_MARK

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV = "LOCOMO_QA_TEST_KEY"


def kind(request: dict[str, Any]) -> str:
    text = "\n".join(str(m.get("content")) for m in request["body"]["messages"])
    return "answer" if ANSWER_MARK in text else "judge" if JUDGE_MARK in text else "extract"


def count(requests: list[dict[str, Any]]) -> dict[str, int]:
    out = {"extract": 0, "answer": 0, "judge": 0}
    for r in requests:
        out[kind(r)] += 1
    return out


def prompt_tokens(requests: list[dict[str, Any]], which: str) -> int:
    """What the fake put in `usage.prompt_tokens` for these requests (its own estimate, recomputed)."""
    return sum(
        approx_tokens(" ".join(str(m.get("content")) for m in r["body"]["messages"]))
        for r in requests
        if kind(r) == which
    )


def bench(out: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable, "-m", "bench.locomo_qa", "--base-url", url, "--model", "scripted", "--api-key-env", KEY_ENV,
        "--smoke", "--conversations", "conv-26", "--max-adds", "20", "--out", str(out), "--concurrency", "4",
        "--price-in", "0.15", "--price-out", "0.60", *extra,
    ]  # fmt: skip
    env = {**os.environ, KEY_ENV: "sk-scripted"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_locomo_qa_runs_end_to_end_and_resumes_without_adding_again() -> None:
    base = run_dir("memserver-locomo-qa-")  # the private Postgres' OS user must reach the run directory
    out = base / "run"
    try:
        with running(FakeOpenAI(echo=True, qa_echo=True)) as fake:
            first = bench(out, fake.url, "--max-questions", "10")
            assert first.returncode == 0, first.stdout + first.stderr
            calls = fake.chat_requests()
            assert count(calls) == {"extract": 20, "answer": 10, "judge": 20}
            report = json.loads((out / "report.json").read_text())

            assert report["smoke"] is True
            assert report["categories"] == {"ran": [1, 2, 3, 4], "skipped": [5]}
            assert report["ingest"] | {"memory_events": None} == {
                "planned": 20,
                "applied": 20,
                "failed": 0,
                "recovered_from_events": 0,
                "memory_events": None,
                "failures": [],
            }
            # both speakers, each in its own namespace, 10 adds each (Mem0's mirrored ingest)
            logged = [json.loads(line) for line in (out / "ingest.jsonl").read_text().splitlines()]
            assert sorted({r["user_id"] for r in logged}) == ["Caroline_0", "Melanie_0"]
            assert sum(r["user_id"] == "Caroline_0" for r in logged) == 10
            extraction = next(c for c in calls if kind(c) == "extract")["body"]["messages"][1]["content"]
            assert "Observed 2023-05-08 13:56 UTC" in extraction  # the session date as `timestamp`
            assert "Generate personal memories that follow these guidelines" in extraction  # the project's text

            scores = report["scores"]
            assert set(scores) == {"J_mem0", "J_strict", "F1", "BLEU1"}
            for table in scores.values():
                assert set(table) == {"1", "2", "3", "4", "overall"}
                assert table["overall"]["n"] == 10 == sum(table[c]["n"] for c in "1234")
            judged = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
            for judge in ("mem0", "strict"):
                labels = [j["label"] == "CORRECT" for j in judged if j["judge"] == judge]
                assert len(labels) == 10
                assert scores[f"J_{judge}"]["overall"]["mean"] == round(sum(labels) / 10, 4)
            # the generous judge accepts what the strict one does, and more (the scripted judge's rule)
            assert scores["J_strict"]["overall"]["mean"] <= scores["J_mem0"]["overall"]["mean"]
            assert scores["J_mem0"]["overall"]["mean"] > 0
            # answers came from memories listed as Mem0 lists them: "<metadata.timestamp>: <memory>"
            answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
            assert any(a["answer"].startswith("1:56 pm on 8 May, 2023: Caroline: ") for a in answers)

            # tokens: memserver's events for the adds, the model's usage for answers and judges, all as counted
            tokens, cost = report["tokens"], report["cost"]
            assert tokens["per_add"]["llm_calls"] == 1.0
            assert tokens["per_add"]["n_with_usage"] == 20
            assert cost["actual"]["add_prompt"] == prompt_tokens(calls, "extract") > 0
            assert cost["actual"]["answer_prompt"] == prompt_tokens(calls, "answer") > 0
            assert cost["actual"]["judge_prompt"] == prompt_tokens(calls, "judge") > 0
            assert tokens["per_question"]["answer"]["completion_tokens"] > 0
            assert tokens["per_question"]["judge_mem0"]["prompt_tokens"] > 0
            assert tokens["per_question"]["judge_strict"]["prompt_tokens"] > 0
            assert all(report["latency"][k]["p50_ms"] > 0 for k in ("add", "search", "answer", "judge"))
            assert cost["estimated"][0]["adds"] == 20
            assert cost["estimated"][0]["usd"] > 0
            assert cost["actual"]["usd"] > 0
            assert len(report["sample"]) == 10
            assert {"label_mem0", "label_strict"} <= set(report["sample"][0])
            assert "| overall | 10 |" in first.stdout
            assert "estimated cost" in first.stdout

            # The server applied the last 3 adds but the log never recorded them (a crash): they are found by
            # their marker among the project's events, not sent again.
            lines = (out / "ingest.jsonl").read_text().splitlines(keepends=True)
            (out / "ingest.jsonl").write_text("".join(lines[:-3]) + lines[-3][:25])  # and a torn last line
            seen = len(fake.chat_requests())
            second = bench(out, fake.url, "--max-questions", "15", "--resume")
            assert second.returncode == 0, second.stdout + second.stderr
            assert count(fake.chat_requests()[seen:]) == {"extract": 0, "answer": 5, "judge": 10}
            report = json.loads((out / "report.json").read_text())
            assert report["ingest"]["applied"] == 20
            assert report["ingest"]["recovered_from_events"] == 3
            assert report["questions"]["answered"] == 15
            assert report["scores"]["J_mem0"]["overall"]["n"] == 15
            assert [run["counts"]["ingest"].get("sent", 0) for run in report["runs"]] == [20, 0]
            assert report["cost"]["estimated"][1]["questions"] == 5

            # a resumed run must keep the settings it was started with
            seen = len(fake.chat_requests())
            changed = bench(out, fake.url, "--max-questions", "15", "--resume", "--top-k", "5")
            assert changed.returncode != 0
            assert "top_k: the run has 30, this command 5" in changed.stderr
            assert len(fake.chat_requests()) == seen
    finally:
        shutil.rmtree(base, ignore_errors=True)
