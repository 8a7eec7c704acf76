"""The deployment files, checked statically (no Docker engine runs here): compose config is valid,
the image is multi-stage and non-root, and every command and MEMSERVER_ variable they use exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_files_pass_the_static_checks() -> None:
    res = subprocess.run(
        ["bash", str(ROOT / ".ci" / "check-deploy-files")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PY": sys.executable, "PATH": "/usr/local/bin:/usr/bin:/bin"},
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "deployment files OK" in res.stdout
