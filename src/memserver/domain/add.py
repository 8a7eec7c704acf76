"""The add use case's input: a request of any client generation, parsed and normalised.

The pieces of that parsing that need no web framework live here too: the shapes `messages` may take, the
text of a message, its media parts and their bounds, and custom categories.

It is also the payload of an asynchronous add job (stored once, on the add's event), so a worker
runs an add from it without the HTTP layer.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

from pydantic import BaseModel, ConfigDict

from memserver.domain import limits
from memserver.domain.dates import parse_zone, time_zone
from memserver.domain.scope import Scope

DOCUMENT_PARTS = ("pdf_url", "txt_url", "mdx_url")  # content parts whose text is read (fetched or inline)


class AddMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: str
    content: Any  # a string, or a list of content parts (text, image_url, pdf_url...)
    name: str | None = None


class AddInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: list[AddMessage]
    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] | None = None
    categories: list[str] | None = None  # verbatim adds: given categories
    immutable: bool = False
    expiration_date: date | None = None
    timestamp: datetime | None = None  # observation time: backdates created_at
    infer: bool = True
    includes: str | None = None
    excludes: str | None = None
    custom_instructions: str | None = None
    agent_custom_instructions: str | None = None
    custom_categories: dict[str, str] | None = None
    enable_graph: bool | None = None
    observed_at: datetime | None = None  # observation_date(time): relative dates resolve against it, no backdating
    timezone: str | None = None  # IANA zone of the observation and the messages: "yesterday" is a day there
    ignored: list[str] | None = None  # parameters the request sent that memserver accepts without effect

    @property
    def zone(self) -> tzinfo | None:
        """The conversation's time zone (checked when the add was accepted)."""
        return parse_zone(self.timezone)

    @property
    def scope(self) -> Scope:
        return Scope(user_id=self.user_id, agent_id=self.agent_id, app_id=self.app_id, run_id=self.run_id)

    def observation(self, now: datetime) -> datetime:
        """When the messages were observed, in the add's zone: observation_date(time), else timestamp, else now."""
        when = self.observed_at or self.timestamp or now
        return when.astimezone(time_zone(self.timezone)) if self.timezone else when

    def history_input(self) -> list[dict[str, Any]]:
        """The messages as memory history shows them (`input`)."""
        return [{"role": m.role, "content": m.content} for m in self.messages]


# Parameters of the Platform's add that memserver accepts without effect: each is noted on the add's event.
IGNORED_PARAMETERS: dict[str, str] = {
    "prompt_profile_id": "memserver has no prompt profiles; use custom_instructions",
    "temporal_reasoning": "relative dates are always resolved against the observation date",
    "structured_data_schema": "memories are text; POST /v1/exports/ fills a JSON schema from them",
    "force_add_only": "the model decides ADD/UPDATE/DELETE; send infer=false to store messages verbatim",
}


def ignored_notes(names: list[str] | None) -> list[str]:
    """The event notes of an add that sent these ignored parameters."""
    return [f"{n} is accepted without effect: {IGNORED_PARAMETERS[n]}" for n in names or [] if n in IGNORED_PARAMETERS]


# -- messages: their shapes, their text and their media (no I/O) -----------------------------------
def parse_messages(messages: Any) -> list[AddMessage]:
    """An add's `messages` in any accepted shape, each with a content, within the text and media limits
    (`limits.current()`); a ValueError says what is wrong. Documents and images are counted and measured here,
    before anything is fetched, parsed or queued."""
    normalized = normalize_messages(messages)
    if not normalized:
        raise ValueError("messages must not be empty")
    if any(not isinstance(m.get("content"), (str, list, dict)) for m in normalized):
        raise ValueError("every message needs a content")
    if all(isinstance(m["content"], str) and not m["content"].strip() for m in normalized):
        raise ValueError("messages have no content to store")
    bounds = limits.current()
    max_chars = bounds.max_text_chars
    if any(len(content_text(m["content"]) or "") > max_chars for m in normalized):
        raise ValueError(f"a message is longer than {max_chars} characters (MEMSERVER_LIMITS__MAX_TEXT_CHARS)")
    check_media(
        [m["content"] for m in normalized],
        max_documents=bounds.max_document_parts,
        max_document_bytes=bounds.max_document_bytes,
        max_images=bounds.max_images,
        max_image_bytes=bounds.max_image_bytes,
    )
    return [
        AddMessage(
            role=str(m.get("role") or "user"), content=m["content"], name=str(m["name"]) if m.get("name") else None
        )
        for m in normalized
    ]


def normalize_messages(messages: Any) -> list[dict[str, Any]]:
    """Accept a string, one message object, or a list of them (as the SDKs do client-side)."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, dict):
        return [messages]
    if isinstance(messages, list):
        return [m if isinstance(m, dict) else {"role": "user", "content": m} for m in messages]
    raise ValueError("messages must be a string, a message object or a list of messages")


def content_text(content: Any) -> str | None:
    """The text of a message's content; images and other media parts are skipped."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text" and p.get("text")]
        parts += [p for p in content if isinstance(p, str)]
        return "\n".join(str(p) for p in parts) if parts else None
    return None


def content_parts(content: Any) -> list[dict[str, Any]]:
    """A message's content as a list of parts: a string is one text part, a lone part object a list of one."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, dict):
        return [content]
    if isinstance(content, list):
        return [p if isinstance(p, dict) else {"type": "text", "text": str(p)} for p in content]
    return []


def media_ref(part: dict[str, Any], kind: str) -> str:
    """The URL (or base64 data) of a media part: {"type": k, k: {"url": ...}} or {"type": k, k: "..."}."""
    value = part.get(kind)
    if isinstance(value, dict):
        value = value.get("url") or value.get("data")
    return str(value or "")


def inline_size(ref: str) -> int:
    """Bytes of a base64 media reference (a `data:` URI or bare base64) once decoded; 0 for an http(s) URL."""
    if ref.startswith(("http://", "https://")):
        return 0
    payload = ref.split(",", 1)[1] if ref.startswith("data:") else ref
    return len(payload) * 3 // 4 - payload.endswith("=") - payload.endswith("==")


def check_media(
    contents: list[Any], *, max_documents: int, max_document_bytes: int, max_images: int, max_image_bytes: int
) -> None:
    """Raise ValueError naming the limit an add's media parts exceed: how many documents and images it
    carries and how large its inline ones are; all known before any document is fetched or parsed."""
    documents = images = 0
    for content in contents:
        for part in content_parts(content):
            kind = part.get("type")
            if kind in DOCUMENT_PARTS:
                documents += 1
                if documents > max_documents:
                    raise ValueError(
                        f"an add may carry at most {max_documents} document parts (pdf_url, txt_url, mdx_url) "
                        "(MEMSERVER_DOCUMENTS__MAX_PARTS)"
                    )
                if inline_size(media_ref(part, str(kind))) > max_document_bytes:
                    raise ValueError(
                        f"an inline document is larger than {max_document_bytes} bytes (MEMSERVER_DOCUMENTS__MAX_BYTES)"
                    )
            elif kind == "image_url":
                images += 1
                if images > max_images:
                    raise ValueError(f"an add may carry at most {max_images} images (MEMSERVER_DOCUMENTS__MAX_IMAGES)")
                if inline_size(media_ref(part, kind)) > max_image_bytes:
                    raise ValueError(
                        f"an inline image is larger than {max_image_bytes} bytes (MEMSERVER_DOCUMENTS__MAX_IMAGE_BYTES)"
                    )


# -- custom categories ---------------------------------------------------------------------------------
def parse_custom_categories(value: Any) -> dict[str, str] | None:
    """`[{"name": "description"}, ...]` (or one such object) -> {name: description}; a ValueError says what is
    wrong, in the words Mem0 uses."""
    if value is None:
        return None
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise ValueError(f'custom_categories: Expected a list of dictionaries but got type "{type(value).__name__}"')
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f'custom_categories: Expected a dictionary of items but got type "{type(item).__name__}"')
    limits.check_categories(items)
    return {str(name): str(description) for item in items for name, description in item.items()}
