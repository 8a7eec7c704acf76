"""Cached environments holding the official Mem0 SDKs, shared by the SDK tests and the speed benchmark.

Each environment lives under ``<repo>/.cache/sdk/`` and is built at most once:

* ``python_sdk("2.2.1")`` -> python executable of a venv with ``mem0ai==2.2.1``;
* ``node_sdk()``          -> a directory whose ``node_modules`` holds npm ``mem0ai@3.3.1``.

A build runs under an exclusive ``fcntl`` lock (so concurrent test processes wait for each other
instead of installing twice) and writes its marker file only after the install succeeded; a
half-built directory left by a crash is wiped and rebuilt on the next call.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from harness import CACHE

CACHE_DIR = CACHE / "sdk"

PYTHON_SDK_VERSIONS = {"current": "2.2.1", "v1_0": "1.0.11", "v0_1": "0.1.118"}
NODE_SDK_VERSION = "3.3.1"

_MARKER = ".installed"
_INSTALL_TIMEOUT = 900  # seconds, per command


class SDKEnvError(RuntimeError):
    """An SDK environment could not be built."""


def _prepare_cache_dir() -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Keep the cache out of `git status` without touching the repository's own .gitignore.
    ignore = CACHE_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    _prepare_cache_dir()
    with open(CACHE_DIR / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], *, cwd: Path | None = None) -> None:
    env = dict(os.environ)
    env.update(
        {
            "MEM0_TELEMETRY": "False",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "npm_config_update_notifier": "false",
        }
    )
    # Do not let an activated outer venv leak into the SDK venv's pip.
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=_INSTALL_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise SDKEnvError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )


def _log(msg: str) -> None:
    sys.stderr.write(f"[sdk-envs] {msg}\n")
    sys.stderr.flush()


def _base_python() -> str:
    """An interpreter for `-m venv`: the outside interpreter, not a venv's (so venvs don't nest)."""
    return (
        shutil.which("python3", path=_path_without_venvs()) or getattr(sys, "_base_executable", None) or sys.executable
    )


def _path_without_venvs() -> str:
    venv = os.environ.get("VIRTUAL_ENV")
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    if venv:
        parts = [p for p in parts if not p.startswith(venv)]
    return os.pathsep.join(parts)


def python_sdk(version: str) -> Path:
    """Return the python executable of a cached venv with ``mem0ai==<version>`` installed."""
    root = CACHE_DIR / f"py-mem0ai-{version}"
    python = root / "bin" / "python"
    marker = root / _MARKER
    if marker.exists() and python.exists():
        return python
    with _locked(f"py-mem0ai-{version}"):
        if marker.exists() and python.exists():  # built by another process while we waited
            return python
        if root.exists():
            shutil.rmtree(root)  # a previous build died half-way
        started = time.monotonic()
        _log(f"creating venv {root} and installing mem0ai=={version}")
        _run([_base_python(), "-m", "venv", str(root)])
        _run([str(python), "-m", "pip", "install", "--quiet", f"mem0ai=={version}"])
        # Prove the install before declaring it done.
        _run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m, mem0; "
                f"v = m.version('mem0ai'); assert v == {version!r}, v; "
                "from mem0 import MemoryClient",
            ]
        )
        marker.write_text(f"mem0ai=={version}\ninstall_seconds={time.monotonic() - started:.1f}\n")
        _log(f"mem0ai=={version} ready in {time.monotonic() - started:.1f}s")
    return python


def node_sdk(version: str = NODE_SDK_VERSION) -> Path:
    """Return a directory whose ``node_modules`` contains npm ``mem0ai@<version>``."""
    root = CACHE_DIR / f"node-mem0ai-{version}"
    marker = root / _MARKER
    pkg = root / "node_modules" / "mem0ai" / "package.json"
    if marker.exists() and pkg.exists():
        return root
    npm = shutil.which("npm")
    if npm is None:
        raise SDKEnvError("npm is not on PATH")
    with _locked(f"node-mem0ai-{version}"):
        if marker.exists() and pkg.exists():
            return root
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        started = time.monotonic()
        _log(f"installing npm mem0ai@{version} into {root}")
        # A private package.json keeps npm from walking up into the repository.
        (root / "package.json").write_text(
            '{"name": "memserver-sdk-env", "private": true, "version": "0.0.0", "type": "module"}\n'
        )
        _run(
            [npm, "install", f"mem0ai@{version}", "--legacy-peer-deps", "--no-audit", "--no-fund"],
            cwd=root,
        )
        node = shutil.which("node") or "node"
        check = (
            'import { MemoryClient } from "mem0ai"; '
            'if (typeof MemoryClient !== "function") throw new Error("MemoryClient export missing");'
        )
        _run([node, "--input-type=module", "-e", check], cwd=root)
        marker.write_text(f"mem0ai@{version}\ninstall_seconds={time.monotonic() - started:.1f}\n")
        _log(f"npm mem0ai@{version} ready in {time.monotonic() - started:.1f}s")
    return root
