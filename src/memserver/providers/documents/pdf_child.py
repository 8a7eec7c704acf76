"""The child process that reads the text of one attacker-supplied PDF (see `pdf.py`, its parent side).

Run as `python -I -m memserver.providers.documents.pdf_child '<limits as JSON>'` with an empty environment:
it limits itself (CPU time, address space, no files, no core dump) before it reads a byte of the PDF,
reads the PDF from stdin, and writes one JSON object to stdout:
`{"ok": true, "text": ..., "pages": n, "cut": null | "chars" | "pages"}` or `{"ok": false, "error": <kind>}`.
It imports nothing of memserver beyond this module, so it carries no settings, keys or connections.
"""

from __future__ import annotations

import io
import json
import resource
import sys
from typing import Any

# A decoded stream may be at most this large. Text lives in content streams, and a 500-page book's total
# under 10 MB; pypdf's own default (75 MB) would let one stream take most of the child's memory, and its
# operators, parsed into Python objects, several times more.
STREAM_MAX_BYTES = 16_000_000


def _limit(kind: int, value: int) -> None:
    resource.setrlimit(kind, (value, value))


def limit_self(cpu_s: int, memory_bytes: int) -> None:
    """The kernel enforces these whatever the parser does: SIGXCPU past `cpu_s` of CPU (then SIGKILL a
    second later), MemoryError past `memory_bytes` of address space, no file written, no core dump of
    a process that holds a user's document."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    _limit(resource.RLIMIT_AS, memory_bytes)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_FSIZE, 0)


def extract(data: bytes, *, max_chars: int, max_pages: int) -> dict[str, Any]:
    """The text of the first pages, up to `max_chars` characters and `max_pages` pages."""
    # Deferred: pypdf is imported after `limit_self`, under the child's limits, and never by the server.
    from pypdf import Configuration, PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError

    stream = STREAM_MAX_BYTES
    limits = Configuration().with_overwrites(
        zlib_maximum_output_length=stream,
        lzw_maximum_output_length=stream,
        run_length_maximum_output_length=stream,
        brotli_maximum_output_length=stream,
        jbig2_maximum_output_length=stream,
        array_based_stream_maximum_output_length=stream,
        maximum_declared_stream_length=stream,
        image_maximum_buffer_size=stream,
        stream_decoding_work_maximum_length=4 * stream,
        xfa_decoding_work_maximum_length=4 * stream,
        jbig2dec_binary=None,  # never run an external decoder on attacker data
    )
    try:
        with apply_configuration(limits):
            reader = PdfReader(io.BytesIO(data))
            texts: list[str] = []
            size, cut, pages = 0, None, 0
            for page in reader.pages:
                if pages >= max_pages:
                    cut = "pages"
                    break
                pages += 1
                text = page.extract_text() or ""
                texts.append(text)
                size += len(text) + 1
                if size > max_chars:
                    cut = "chars"
                    break
    except LimitReachedError:
        return {"ok": False, "error": "limit"}
    except MemoryError:
        return {"ok": False, "error": "memory"}
    except Exception as exc:  # a malformed file can raise anything from the parser: all are "unreadable"
        return {"ok": False, "error": "unreadable", "detail": type(exc).__name__}
    return {"ok": True, "text": "\n".join(texts)[:max_chars], "pages": pages, "cut": cut}


def main() -> None:
    opts = json.loads(sys.argv[1])
    limit_self(int(opts["cpu_s"]), int(opts["memory_bytes"]))
    data = sys.stdin.buffer.read(int(opts["max_bytes"]) + 1)
    if len(data) > int(opts["max_bytes"]):
        result: dict[str, Any] = {"ok": False, "error": "too_large"}
    else:
        try:
            result = extract(data, max_chars=int(opts["max_chars"]), max_pages=int(opts["max_pages"]))
        except MemoryError:  # raised outside the parser (the import, the join)
            result = {"ok": False, "error": "memory"}
    sys.stdout.buffer.write(json.dumps(result, ensure_ascii=False).encode("utf-8", "replace"))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
