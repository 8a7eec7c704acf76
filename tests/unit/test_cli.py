"""The `memserver` command line: keys, orgs and projects; and the embedded first start."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness import MODEL_CACHE
from harness.server import free_port, server_env


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memserver.cli", *args],
        env=server_env(database_url, 0),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_orgs_projects_and_keys(database_url: str, live_server: str) -> None:
    org = f"cli-org-{time.time_ns()}"
    assert cli(database_url, "orgs", "create", org).returncode == 0
    assert org in cli(database_url, "orgs", "list").stdout
    assert cli(database_url, "projects", "create", "support", "--org", org).returncode == 0
    assert f"{org}/support" in cli(database_url, "projects", "list", "--org", org).stdout
    created = cli(database_url, "keys", "create", "--org", org, "--project", "support", "--email", "ops@example.com")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("m0-")
    listing = cli(database_url, "keys", "list").stdout
    assert key[:8] in listing
    assert key not in listing
    ping = httpx.get(f"{live_server}/v1/ping/", headers={"Authorization": f"Token {key}"})
    assert ping.status_code == 200
    assert ping.json()["user_email"] == "ops@example.com"
    assert ping.json()["project_name"] == "support"
    assert cli(database_url, "keys", "revoke", key[:8]).returncode == 0
    time.sleep(5.5)  # the server caches a resolved key for MEMSERVER_AUTH__KEY_CACHE_TTL_S (5 s)
    assert httpx.get(f"{live_server}/v1/ping/", headers={"Authorization": f"Token {key}"}).status_code == 401


def test_unknown_org_is_a_clear_error(database_url: str) -> None:
    res = cli(database_url, "keys", "create", "--org", "no-such-org")
    assert res.returncode != 0
    assert "no org named" in res.stderr


def test_first_start_on_the_embedded_default_prints_one_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`memserver serve` with no database URL: private Postgres, migrations, a first key, shown once."""
    data_dir = Path("/tmp") / f"memserver-cli-test-{os.getpid()}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSERVER_")}
    env.update(
        MEMSERVER_EMBEDDED__DATA_DIR=str(data_dir),
        MEMSERVER_PORT=str(port),
        MEMSERVER_EMBEDDER__CACHE_DIR=str(MODEL_CACHE),
        MEMSERVER_LOG_LEVEL="warning",
    )
    log = tmp_path_factory.mktemp("first-start")

    def serve(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        out = log / name
        with out.open("wb") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "memserver.cli", "serve"], env=env, stdout=f, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, out.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return proc, out
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(out.read_text())

    try:
        proc, out = serve("first.log")
        keys = re.findall(r"m0-[A-Za-z0-9_-]{20,}", out.read_text())
        assert keys, out.read_text()
        key = keys[0]
        ok = httpx.get(f"http://127.0.0.1:{port}/v1/ping/", headers={"Authorization": f"Token {key}"})
        assert ok.status_code == 200
        assert ok.json()["status"] == "ok"
        bad = httpx.get(f"http://127.0.0.1:{port}/v1/ping/", headers={"Authorization": "Token m0-wrong"})
        assert bad.status_code == 401
        # Postgres runs as an unprivileged user, in a 0700 directory; nothing above it was widened.
        pgdata = data_dir / "pg"
        assert stat.S_IMODE(pgdata.stat().st_mode) == 0o700
        # This holds for every user running the tests: as root, memserver hands Postgres to an unprivileged
        # OS user; as anyone else, Postgres runs as that user (it has no privilege to become another).
        pg_uid = pgdata.stat().st_uid
        assert pg_uid != 0
        if os.geteuid() != 0:
            assert pg_uid == os.geteuid()
        postmaster = (pgdata / "postmaster.pid").read_text().split()[0]
        ps = ["ps", "-o", "ruid=,euid=", "-p", postmaster, "--ppid", postmaster]
        uids = subprocess.run(ps, capture_output=True, text=True, check=True).stdout.split()
        assert len(uids) >= 4, uids  # the postmaster and at least one of its children
        assert set(uids) == {str(pg_uid)}, uids
        assert stat.S_IMODE(Path("/tmp").stat().st_mode) == 0o1777
        # SIGTERM (docker stop, systemd) shuts the server down and stops its Postgres with it
        assert (pgdata / "postmaster.pid").exists()
        proc.terminate()
        assert proc.wait(30) == 128 + signal.SIGTERM
        assert not (pgdata / "postmaster.pid").exists(), out.read_text()
        # a restart keeps the data and prints no new key
        proc, out = serve("second.log")
        assert not re.findall(r"m0-[A-Za-z0-9_-]{20,}", out.read_text())
        assert (
            httpx.get(f"http://127.0.0.1:{port}/v1/ping/", headers={"Authorization": f"Token {key}"}).status_code == 200
        )
        proc.terminate()
        proc.wait(30)
    finally:
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)


def test_an_embedder_of_another_dimension_is_refused_at_startup(database_url: str) -> None:
    """The schema was created for 384-d vectors; a 768-d embedder must fail clearly, not corrupt data."""
    env = server_env(
        database_url,
        free_port(),
        MEMSERVER_EMBEDDER__PROVIDER="openai",
        MEMSERVER_EMBEDDER__DIM="768",
        MEMSERVER_EMBEDDER__BASE_URL="http://127.0.0.1:9/v1",
        MEMSERVER_LOG_LEVEL="info",
    )
    res = subprocess.run(
        [sys.executable, "-m", "memserver.cli", "serve"], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0
    assert "384-dimensional" in res.stdout + res.stderr
    assert "768" in res.stdout + res.stderr


def test_an_inconsistent_configuration_is_refused_at_startup_with_its_reason(database_url: str) -> None:
    """A reranker asked for without its URL: the start stops with one clear line, not a traceback."""
    env = server_env(database_url, free_port(), MEMSERVER_RERANK__PROVIDER="http")
    res = subprocess.run(
        [sys.executable, "-m", "memserver.cli", "serve"], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0
    assert "memserver: invalid configuration" in res.stderr
    assert "MEMSERVER_RERANK__PROVIDER=http needs MEMSERVER_RERANK__URL" in res.stderr
    assert "Traceback" not in res.stderr
