"""Secrets at rest: the embedded Postgres password file is private from its creation, and production settings
refuse the compose file's default passwords."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from memserver.config import Settings
from memserver.embedded_postgres import EmbeddedPostgres, write_private


# --- embedded Postgres password files ----------------------------------------------------------
def test_password_files_are_private_from_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no later chmod to rescue them and a permissive umask, the files must be created 0600."""
    base = Path("/tmp") / f"memserver-abuse-pw-{os.getpid()}"
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    old = os.umask(0)
    try:
        pg = EmbeddedPostgres(base, fast=True)
        pg.ensure_initialized()
        for f in (pg.password_file,):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, oct(f.stat().st_mode)
    finally:
        os.umask(old)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_write_private_tightens_an_existing_file(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_text("old")
    f.chmod(0o644)
    write_private(f, "new")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert f.read_text() == "new"


# --- production mode refuses default secrets ------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"database_url": SecretStr("postgresql://memserver:memserver@db:5432/memserver")},
        {"database_url": SecretStr("postgresql://memserver@db:5432/memserver")},
        {"worker": {"runner": "celery"}, "redis": {"url": "redis://redis:6379/0"}},
    ],
)
def test_prod_settings_refuse_default_passwords(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(env="prod", _env_file=None, **fields)  # type: ignore[arg-type, call-arg]
    Settings(env="dev", _env_file=None, **fields)  # type: ignore[arg-type, call-arg]


def test_prod_settings_accept_real_passwords() -> None:
    Settings(
        env="prod",
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr("postgresql://memserver:s3cret-Xy@db:5432/memserver"),
        worker={"runner": "celery"},  # type: ignore[arg-type]
        redis={"url": "redis://:r3dis-pw@redis:6379/0"},  # type: ignore[arg-type]
    )
