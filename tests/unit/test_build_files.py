"""The Makefile and the CI entry point: every declared target does something, and CI runs the whole suite."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()


def test_every_phony_target_does_something() -> None:
    phony = MAKEFILE.split(".PHONY:", 1)[1].split("\n", 1)[0].split()
    assert phony
    for target in phony:
        rule = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n)*)", MAKEFILE, flags=re.M)
        assert rule, f"{target} is declared .PHONY but has no rule: `make {target}` would silently do nothing"
        prerequisites, recipe = rule.group(1).split("#")[0].strip(), rule.group(2).strip()
        assert prerequisites or recipe, f"{target} has neither prerequisites nor a recipe"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ARGS", "PYTEST_ADDOPTS")}
    return {**env, **extra}


@pytest.mark.parametrize("var", ["PYTEST_ARGS", "PYTEST_ADDOPTS"])
def test_ci_refuses_pytest_options_from_the_environment(var: str) -> None:
    run = subprocess.run(["bash", ".ci/run"], cwd=ROOT, env=_env(**{var: "-k nothing"}), capture_output=True, text=True)
    assert run.returncode == 2, run.stdout + run.stderr
    assert var in run.stderr
    # make test itself refuses them under CI=true (install and system-deps taken as done: nothing runs)
    make = ["make", "-o", "install", "-o", "system-deps", "test"]
    run = subprocess.run(make, cwd=ROOT, env=_env(CI="true", **{var: "-k nothing"}), capture_output=True, text=True)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "refusing to narrow the CI run" in run.stderr


def test_ci_lints_before_testing() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert script.index("make lint") < script.index("make test")
