"""The text of an attacker-supplied PDF, read in a child process with limits (the parser never runs here).

A PDF is a program for a parser: a 300 KB file can inflate to gigabytes (FlateDecode/LZW bombs) or loop
for minutes, and in the API process that blocks the event loop (heartbeats stop, leases expire, other
runners repeat the jobs) or kills the process. So each PDF is parsed by `pdf_child` in a fresh
interpreter (`python -I`, an empty environment: no settings, keys or database URL; no inherited file
descriptors) that limits its own CPU time and address space before it reads the PDF; this side adds a
wall-clock timeout, caps what it reads back, and kills the child when the add is cancelled or its
deadline passes.

Process per document, not a pool: measured here (2 cores), a child costs ~100 ms per PDF (~9 ms for the
interpreter, the rest importing pypdf) against ~0.5 ms to parse a one-page PDF in a warm process. An
add reads at most a few documents and then waits seconds for the LLM, so 100 ms is noise; in exchange
every PDF gets fresh limits (RLIMIT_CPU counts a process's whole life, so a pool worker would need
re-arming), no state survives from one tenant's document to another's, and there is no long-lived
worker to supervise in both the API and the Celery worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from memserver.providers.documents.errors import DocumentError
from memserver.providers.errors import ProviderUnavailable

log = logging.getLogger(__name__)

CHILD_MODULE = "memserver.providers.documents.pdf_child"
_STREAM_LIMIT_MB = 16  # pdf_child.STREAM_MAX_BYTES, in the words of the refusal


@dataclass(frozen=True)
class PdfText:
    text: str
    pages: int  # pages read
    cut: str | None  # None, "chars" (the text went on) or "pages" (more pages than max_pages)


@dataclass
class PdfParser:
    """Runs `pdf_child` under limits; at most `concurrency` children at once per process."""

    max_pages: int = 500
    cpu_s: int = 10
    memory_mb: int = 512
    timeout_s: float = 20.0
    concurrency: int = 2
    _slots: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(max(1, self.concurrency))

    async def text(self, data: bytes, *, max_chars: int) -> PdfText:
        """The text of the PDF's first pages, at most `max_chars` characters; DocumentError if refused."""
        async with self._slots:
            status, reply = await self._run(data, max_chars)
        return self._result(status, reply)

    async def _run(self, data: bytes, max_chars: int) -> tuple[str, dict[str, Any] | None]:
        opts = {
            "cpu_s": self.cpu_s,
            "memory_bytes": self.memory_mb * 1024 * 1024,
            "max_bytes": len(data),
            "max_chars": max_chars,
            "max_pages": self.max_pages,
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-m",
                CHILD_MODULE,
                json.dumps(opts),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={},  # the child needs nothing from ours: no key or URL reaches the parser
                close_fds=True,
            )
        except OSError:
            log.warning("the pdf reader process could not be started", exc_info=True)
            raise ProviderUnavailable("the pdf reader could not be started; retry later", public=True) from None
        feeding = asyncio.ensure_future(_feed(proc, data))
        try:
            async with asyncio.timeout(self.timeout_s):
                # JSON of max_chars characters: at most 6 bytes each (\u00XX escapes), plus the envelope
                out = await _read_capped(proc, 6 * max_chars + 4096)
                if out is None:
                    return "overflow", None
                await feeding
                code = await proc.wait()
        except TimeoutError:
            return "timeout", None
        finally:
            feeding.cancel()
            if proc.returncode is None:  # timed out, over its output cap, or the add was cancelled
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if code != 0:
            return ("cpu" if code in (-signal.SIGXCPU, -signal.SIGKILL) else f"exit {code}"), None
        try:
            reply = json.loads(out)
        except ValueError:
            return "garbled", None
        return "ok", reply if isinstance(reply, dict) else None

    def _result(self, status: str, reply: dict[str, Any] | None) -> PdfText:
        if status == "ok" and reply is not None and reply.get("ok") is True:
            return PdfText(text=str(reply.get("text", "")), pages=int(reply.get("pages", 0)), cut=reply.get("cut"))
        error = str(reply.get("error")) if reply else status
        log.info("a pdf document was refused: %s %s", error, reply.get("detail", "") if reply else "")
        raise DocumentError(self._reason(error))

    def _reason(self, error: str) -> str:
        refused = "a pdf document was refused:"
        if error == "limit":
            return f"{refused} it decompresses past the reader's limits ({_STREAM_LIMIT_MB} MB per stream)"
        if error == "memory":
            return f"{refused} reading it needs more than {self.memory_mb} MB (MEMSERVER_DOCUMENTS__PDF_MEMORY_MB)"
        if error == "cpu":
            return f"{refused} reading it took more than {self.cpu_s} s of CPU time (MEMSERVER_DOCUMENTS__PDF_CPU_S)"
        if error == "timeout":
            return f"{refused} reading it took longer than {self.timeout_s:g} s (MEMSERVER_DOCUMENTS__PDF_TIMEOUT_S)"
        if error == "overflow":
            return f"{refused} its reader produced more output than asked for"
        return "a pdf document could not be read"


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    """Write the PDF to the child's stdin; a child that stopped reading (it died) is not an error here."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        proc.stdin.close()


async def _read_capped(proc: asyncio.subprocess.Process, cap: int) -> bytes | None:
    """The child's whole stdout, or None once it passes `cap` bytes."""
    assert proc.stdout is not None
    chunks: list[bytes] = []
    size = 0
    while chunk := await proc.stdout.read(65536):
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
