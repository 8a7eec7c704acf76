"""The messages of an add as the model reads them: text, document text, and (for a vision model) images.

One add does a bounded amount of document work, whoever sent it: at most `max_parts` documents and
`max_images` images (the HTTP edge refuses more before any work; this re-checks for adds queued under
other settings), at most `max_total_chars` characters of document text in all (the rest is cut, with a
note), and one deadline for fetching and parsing all of them (past it the add fails; nothing is written).
"""

from __future__ import annotations

import asyncio
from typing import Any

from memserver.domain.add import DOCUMENT_PARTS, AddMessage, check_media, content_parts, media_ref
from memserver.pipeline.types import InMessage
from memserver.providers.documents.reader import DocumentError, DocumentReader


async def read_messages(
    messages: list[AddMessage], *, reader: DocumentReader, vision: bool, notes: list[str]
) -> tuple[list[InMessage], list[dict[str, Any]]]:
    """(messages with their text, image parts for a vision model); what was skipped or cut goes into `notes`."""
    try:
        check_media(
            [m.content for m in messages],
            max_documents=reader.max_parts,
            max_document_bytes=reader.max_bytes,
            max_images=reader.max_images,
            max_image_bytes=reader.max_image_bytes,
        )
    except ValueError as exc:
        raise DocumentError(str(exc)) from None
    deadline = asyncio.timeout(reader.deadline_s)
    try:
        async with deadline:
            return await _read(messages, reader, vision, notes)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise DocumentError(
            f"reading the add's documents took longer than {reader.deadline_s:g} s (MEMSERVER_DOCUMENTS__DEADLINE_S)"
        ) from None


async def _read(
    messages: list[AddMessage], reader: DocumentReader, vision: bool, notes: list[str]
) -> tuple[list[InMessage], list[dict[str, Any]]]:
    out: list[InMessage] = []
    images: list[dict[str, Any]] = []
    skipped = 0
    budget = reader.max_total_chars  # document characters this add may still put into the prompt
    for i, m in enumerate(messages):
        texts: list[str] = []
        for part in content_parts(m.content):
            kind = str(part.get("type"))
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image_url":
                if vision:  # fetched here under the URL policy: the model never gets a URL to fetch
                    url = await reader.image(media_ref(part, kind))
                    images.append({"type": "image_url", "image_url": {"url": url}})
                    texts.append(f"[image {len(images)} attached]")
                else:
                    skipped += 1
            elif kind in DOCUMENT_PARTS:
                if budget <= 0:  # nothing more may be read: not even fetched
                    notes.append(f"message {i}: a document was not read: {_total_note(reader)}")
                    continue
                text, cut = await reader.read(kind, media_ref(part, kind), max_chars=budget)
                budget -= len(text)
                texts.append(f"[document]\n{text}")
                if cut:
                    notes.append(f"message {i}: {_cut_note(reader, cut, budget)}")
        out.append(InMessage(index=i, role=m.role, name=m.name, text="\n".join(t for t in texts if t)))
    if skipped:
        notes.append(
            f"{skipped} image(s) skipped: the LLM is not configured as vision-capable (MEMSERVER_LLM__VISION=true)"
        )
    return out, images


def _total_note(reader: DocumentReader) -> str:
    return (
        f"the add's documents reached {reader.max_total_chars} characters in all (MEMSERVER_DOCUMENTS__MAX_TOTAL_CHARS)"
    )


def _cut_note(reader: DocumentReader, cut: str, budget: int) -> str:
    if cut == "pages":
        return f"a pdf document was cut to its first {reader.pdf.max_pages} pages (MEMSERVER_DOCUMENTS__PDF_MAX_PAGES)"
    if budget <= 0:
        return f"a document was cut: {_total_note(reader)}"
    return f"a document was cut to {reader.max_chars} characters (MEMSERVER_DOCUMENTS__MAX_CHARS)"
