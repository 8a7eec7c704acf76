"""Cached environments holding the official Mem0 SDKs, for the SDK compatibility tests.

Each environment lives under ``<repo>/.cache/sdk/`` and is built at most once:

* ``python_sdk("2.2.1")`` -> python executable of a venv with ``mem0ai==2.2.1``;
* ``node_sdk()``          -> a directory whose ``node_modules`` holds npm ``mem0ai@3.3.1``.

A build runs under an exclusive ``fcntl`` lock (so concurrent test processes wait for each other
instead of installing twice) and writes its marker file only after the install succeeded; a
half-built directory left by a crash is wiped and rebuilt on the next call.

Run ``python tests/sdk/envs.py`` to build every environment ahead of time, and
``MEMSERVER_URL=... MEMSERVER_KEY=... python tests/sdk/envs.py run py-current [wrong-key]`` to run one
scenario by hand (generations: py-current, py-v1.0, py-v0.1, ts-v3).
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

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "sdk"

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


SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

# generation id -> (scenario file, SDK environment)
GENERATIONS: dict[str, tuple[str, str]] = {
    "py-current": ("py_current.py", PYTHON_SDK_VERSIONS["current"]),
    "py-v1.0": ("py_v1_0.py", PYTHON_SDK_VERSIONS["v1_0"]),
    "py-v0.1": ("py_v0_1.py", PYTHON_SDK_VERSIONS["v0_1"]),
    "ts-v3": ("ts_v3.mjs", NODE_SDK_VERSION),
}


# generation id -> (platform scenario file, SDK environment): orgs, projects, settings, exports, profiles
PLATFORM: dict[str, tuple[str, str]] = {
    "py-current": ("py_platform.py", PYTHON_SDK_VERSIONS["current"]),
    "py-v1.0": ("py_platform_old.py", PYTHON_SDK_VERSIONS["v1_0"]),
    "py-v0.1": ("py_platform_old.py", PYTHON_SDK_VERSIONS["v0_1"]),
    "ts-v3": ("ts_platform.mjs", NODE_SDK_VERSION),
}


def scenario_command(
    generation: str, workdir: Path, mode: str = "full", scenarios: dict[str, tuple[str, str]] | None = None
) -> tuple[list[str], Path]:
    """Build (argv, cwd) that runs one generation's scenario with its own SDK interpreter.

    Builds the SDK environment first if needed. ``mode`` is ``"full"`` or ``"wrong-key"``.
    Node resolves the bare ``"mem0ai"`` import relative to the importing file and ignores NODE_PATH
    for ES modules, so the .mjs is copied into ``workdir`` next to a symlink to the cached
    ``node_modules``; ``workdir`` must be a private (e.g. per-test temporary) directory.
    """
    script_name, version = (scenarios or GENERATIONS)[generation]
    script = SCENARIO_DIR / script_name
    workdir.mkdir(parents=True, exist_ok=True)
    if script.suffix == ".py":
        return [str(python_sdk(version)), str(script), mode], workdir
    env_dir = node_sdk(version)
    link = workdir / "node_modules"
    if not link.exists():
        link.symlink_to(env_dir / "node_modules", target_is_directory=True)
    copy = workdir / script.name
    shutil.copyfile(script, copy)
    node = shutil.which("node") or "node"
    return [node, str(copy), mode], workdir


def scenario_env(base_url: str, api_key: str, mem0_dir: Path) -> dict[str, str]:
    """Environment for a scenario subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "NODE_OPTIONS")}
    env.update(
        {
            "MEMSERVER_URL": base_url,
            "MEMSERVER_KEY": api_key,
            # Python accepts any casing; the TS SDK only switches telemetry off for exactly "false".
            "MEM0_TELEMETRY": "false",
            # Both SDKs write ~/.mem0/config.json; keep that out of the real home directory.
            "MEM0_DIR": str(mem0_dir),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def main(argv: list[str]) -> int:
    """``envs.py`` builds every environment; ``envs.py run GEN [wrong-key]`` runs one scenario against
    MEMSERVER_URL / MEMSERVER_KEY from the environment."""
    if argv[:1] == ["run"] and len(argv) >= 2:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="memserver-sdk-") as tmp:
            cmd, cwd = scenario_command(argv[1], Path(tmp), argv[2] if len(argv) > 2 else "full")
            env = scenario_env(os.environ["MEMSERVER_URL"], os.environ["MEMSERVER_KEY"], Path(tmp) / "mem0")
            return subprocess.run(cmd, cwd=cwd, env=env, check=False).returncode
    if argv:
        sys.stderr.write(f"usage: envs.py [run {{{','.join(GENERATIONS)}}} [wrong-key]]\n")
        return 2
    for version in PYTHON_SDK_VERSIONS.values():
        sys.stdout.write(f"{python_sdk(version)}\n")
    sys.stdout.write(f"{node_sdk()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
