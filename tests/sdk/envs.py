"""The official Mem0 SDKs' scenarios (``scenarios/``), one per client generation, run with the SDK's own
interpreter from the cached environments of ``harness.sdk_envs``.

Run ``python -m tests.sdk.envs`` (from the repository root) to build every environment ahead of time, and
``MEMSERVER_URL=... MEMSERVER_KEY=... python -m tests.sdk.envs run py-current [wrong-key]`` to run one
scenario by hand (generations: py-current, py-v1.0, py-v0.1, ts-v3).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.sdk_envs import NODE_SDK_VERSION, PYTHON_SDK_VERSIONS, SDKEnvError, node_sdk, python_sdk

__all__ = ["GENERATIONS", "SDKEnvError", "scenario_command", "scenario_env"]


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
    for ES modules, so the .mjs (and the ``_common.mjs`` it imports) is copied into ``workdir`` next to a
    symlink to the cached ``node_modules``; ``workdir`` must be a private (e.g. per-test temporary) directory.
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
    shutil.copyfile(SCENARIO_DIR / "_common.mjs", workdir / "_common.mjs")  # the scenarios' shared checks
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
    """``python -m tests.sdk.envs`` builds every environment; ``... run GEN [wrong-key]`` runs one scenario against
    MEMSERVER_URL / MEMSERVER_KEY from the environment."""
    if argv[:1] == ["run"] and len(argv) >= 2:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="memserver-sdk-") as tmp:
            cmd, cwd = scenario_command(argv[1], Path(tmp), argv[2] if len(argv) > 2 else "full")
            env = scenario_env(os.environ["MEMSERVER_URL"], os.environ["MEMSERVER_KEY"], Path(tmp) / "mem0")
            return subprocess.run(cmd, cwd=cwd, env=env, check=False).returncode
    if argv:
        sys.stderr.write(f"usage: python -m tests.sdk.envs [run {{{','.join(GENERATIONS)}}} [wrong-key]]\n")
        return 2
    for version in PYTHON_SDK_VERSIONS.values():
        sys.stdout.write(f"{python_sdk(version)}\n")
    sys.stdout.write(f"{node_sdk()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
