"""The run directory: its manifest (`run.json`), its append-only logs, and a lock so two runs never share it.

`ingest.jsonl` (one record per add applied or given up), `answers.jsonl` (one per question answered) and
`judgments.jsonl` (one per question and judge) are only ever appended to, one JSON line per record, flushed
and fsynced before the next step. A line cut short by a crash is dropped when the log is next opened.
`--resume` continues a run only if its manifest is the same as the one the run was started with.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, TextIO

LOGS = ("ingest", "answers", "judgments")


class ManifestMismatch(SystemExit):
    pass


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest_path = path / "run.json"
        self._lock: TextIO | None = None
        self._files: dict[str, TextIO] = {}

    def lock(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = (self.path / ".lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise SystemExit(f"{self.path} is in use by another run") from None

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def started(self) -> bool:
        return self.manifest_path.exists()

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest_path.read_text()))

    def check_manifest(self, wanted: dict[str, Any]) -> dict[str, Any]:
        """The stored manifest, if its pinned settings are `wanted`; else ManifestMismatch names the differences."""
        stored = self.manifest()
        pinned = stored.get("pinned", {})
        diff = [k for k in sorted(set(wanted) | set(pinned)) if pinned.get(k) != wanted.get(k)]
        if diff:
            lines = [f"  {k}: the run has {pinned.get(k)!r}, this command {wanted.get(k)!r}" for k in diff]
            raise ManifestMismatch(
                f"--resume refused: {self.manifest_path} was started with other settings:\n" + "\n".join(lines)
            )
        return stored

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, self.manifest_path)

    def read(self, log: str) -> list[dict[str, Any]]:
        path = self.path / f"{log}.jsonl"
        if not path.exists():
            return []
        _drop_torn_tail(path)
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def append(self, log: str, record: dict[str, Any]) -> None:
        f = self._files.get(log)
        if f is None:
            path = self.path / f"{log}.jsonl"
            if path.exists():
                _drop_torn_tail(path)
            f = self._files[log] = path.open("a")
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that was not completely written (no final newline, or not JSON)."""
    data = path.read_bytes()
    if not data:
        return
    keep = data if data.endswith(b"\n") else data[: data.rfind(b"\n") + 1]
    lines = keep.splitlines(keepends=True)
    while lines:
        try:
            json.loads(lines[-1])
            break
        except ValueError:
            lines.pop()
    keep = b"".join(lines)
    if keep != data:
        with path.open("r+b") as f:
            f.truncate(len(keep))
