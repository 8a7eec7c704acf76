"""Bodies of the organisation, project and member routes."""

from __future__ import annotations

from memserver.api.kit.schema import Schema


class NameBody(Schema):
    name: str | None = None
    description: str | None = None


class MemberBody(Schema):
    email: str | None = None
    role: str | None = None
