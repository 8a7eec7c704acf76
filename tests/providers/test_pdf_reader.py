"""PDFs are parsed in a child process under limits: CPU, memory, pages, output, wall clock; never in ours.

Each test runs the real child (`python -I -m memserver.providers.documents.pdf_child`) on a PDF built
here; the kernel's view of the child (/proc/<pid>/limits, /proc/<pid>/environ) is read while it runs.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import time
from pathlib import Path

import pytest

from memserver.providers.documents.pdf import PdfParser
from memserver.providers.documents.reader import DocumentError, DocumentReader
from tests.fakes.pdfs import compression_bomb, cpu_bomb, text_pdf


def pdf_children() -> list[int]:
    """Pids of this process's live pdf_child processes."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (d / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"pdf_child" in cmdline:
            out.append(int(d.name))
    return out


async def wait_for_child(within_s: float = 10) -> int:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if kids := pdf_children():
            return kids[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no pdf child process started")


def _module_file(fd: Path) -> bool:
    try:
        return os.readlink(fd).endswith((".py", ".pyc", ".so"))
    except OSError:  # closed since it was listed
        return True


def child_view(pid: int) -> dict[str, str]:
    """What the kernel says of a process: its soft limits by name, its environment, its open descriptors."""
    view = {"environ": Path(f"/proc/{pid}/environ").read_bytes().decode()}
    # beyond stdin/stdout/stderr, only a module file being imported may be open
    fds = Path(f"/proc/{pid}/fd").iterdir()
    view["other fds"] = " ".join(os.readlink(f) for f in fds if int(f.name) > 2 and not _module_file(f))
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        name, soft = line[:26].strip(), line[26:].split()[0]
        view[name] = soft
    return view


async def test_text_pages_and_output_are_limited() -> None:
    parser = PdfParser(max_pages=2)
    out = await parser.text(text_pdf("Allergic to penicillin", "Blood type A+", "Page three"), max_chars=1000)
    assert "Allergic to penicillin" in out.text
    assert "Blood type A+" in out.text
    assert "Page three" not in out.text
    assert (out.pages, out.cut) == (2, "pages")
    out = await parser.text(text_pdf("Allergic to penicillin"), max_chars=8)
    assert (out.text, out.cut) == ("Allergic", "chars")


async def test_the_child_runs_with_limits_and_without_our_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMSERVER_LLM__API_KEY", "sk-must-not-reach-the-parser")
    parser = PdfParser(cpu_s=7, memory_mb=300, timeout_s=30)
    parsing = asyncio.ensure_future(parser.text(cpu_bomb(200), max_chars=1000))
    try:
        pid = await wait_for_child()
        for _ in range(500):  # the child limits itself first thing, before it reads the PDF
            view = child_view(pid)
            if view["Max cpu time"] != "unlimited":
                break
            await asyncio.sleep(0.01)
        assert view["environ"] == ""
        assert view["Max cpu time"] == "7"
        assert view["Max address space"] == str(300 * 1024 * 1024)
        assert view["Max core file size"] == "0"
        assert view["Max file size"] == "0"
        assert view["other fds"] == ""  # no socket, pipe or file of ours is inherited
    finally:
        parsing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await parsing
    assert pdf_children() == []  # cancelling the parse killed the child


async def test_the_event_loop_keeps_running_while_a_pdf_is_parsed() -> None:
    parser = PdfParser(cpu_s=2, timeout_s=30)
    parsing = asyncio.ensure_future(parser.text(cpu_bomb(200), max_chars=1000))
    worst, ticks = 0.0, 0
    while not parsing.done():
        t = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - t)
        ticks += 1
    with pytest.raises(DocumentError, match=r"more than 2 s of CPU time \(MEMSERVER_DOCUMENTS__PDF_CPU_S\)"):
        await parsing
    assert ticks > 50  # the loop ran all along (2 s of CPU: well over a hundred 10 ms ticks)
    assert worst < 1.0, worst


async def test_the_wall_clock_timeout_kills_the_child() -> None:
    parser = PdfParser(cpu_s=60, timeout_s=1)
    started = time.monotonic()
    with pytest.raises(DocumentError, match=r"longer than 1 s \(MEMSERVER_DOCUMENTS__PDF_TIMEOUT_S\)"):
        await parser.text(cpu_bomb(200), max_chars=1000)
    assert time.monotonic() - started < 5
    assert pdf_children() == []


async def test_a_compression_bomb_is_refused_without_inflating_here() -> None:
    bomb = compression_bomb(300)
    assert len(bomb) < 400_000  # 300 MB of zeros in ~300 KB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DocumentError, match="decompresses past the reader's limits"):
        await DocumentReader().read("pdf_url", base64.b64encode(bomb).decode())
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 20, grown_mb  # our peak RSS did not take the inflated stream (300 MB)


async def test_the_memory_limit_refuses_a_pdf_that_needs_more() -> None:
    # ~14 MB of zeros: under the per-stream limit, but decoding it needs more than 64 MB of address space
    # (the interpreter and pypdf take ~45 MB before the PDF is read).
    parser = PdfParser(memory_mb=64)
    with pytest.raises(DocumentError, match=r"needs more than 64 MB \(MEMSERVER_DOCUMENTS__PDF_MEMORY_MB\)"):
        await parser.text(compression_bomb(14), max_chars=1000)
    assert (await PdfParser().text(compression_bomb(14), max_chars=1000)).text == ""  # fine with the default


async def test_garbage_and_truncated_pdfs_are_unreadable() -> None:
    parser = PdfParser()
    for data in (b"not a pdf", text_pdf("cut short")[:200], b""):
        with pytest.raises(DocumentError, match="pdf document could not be read"):
            await parser.text(data, max_chars=1000)
