"""The add use case's input: a request of any client generation, parsed and normalised.

It is also the payload of an asynchronous add job (stored once, on the add's event), so a worker
runs an add from it without the HTTP layer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

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

    @property
    def scope(self) -> Scope:
        return Scope(user_id=self.user_id, agent_id=self.agent_id, app_id=self.app_id, run_id=self.run_id)

    def history_input(self) -> list[dict[str, Any]]:
        """The messages as memory history shows them (`input`)."""
        return [{"role": m.role, "content": m.content} for m in self.messages]
