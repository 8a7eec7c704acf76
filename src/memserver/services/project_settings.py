"""Project settings: what the SDKs send to `PATCH .../projects/{id}/`, stored with the project.

`project_settings(db, project_id)` returns the typed settings; `effective(settings, **request)` merges a
request's own values over them, and `with_project_defaults(settings, add_input)` does that for an add
(request values win). The inference pipeline calls them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, Field

from memserver.domain import limits
from memserver.domain.add import AddInput
from memserver.domain.principal import Principal
from memserver.domain.rows.tenancy import MemberRoleRow, ProjectRow
from memserver.errors import BadRequest, NotFound, invalid
from memserver.services import permissions
from memserver.storage.db import Database
from memserver.storage.repositories.tenants import TenantRepository

# Kept in their own columns (older schema); everything else lives in `projects.settings`.
COLUMNS = ("name", "description", "custom_instructions", "custom_categories")
STRINGS = (
    "name",
    "description",
    "custom_instructions",
    "agent_custom_instructions",
    "memory_depth",
    "version",
    "inclusion_prompt",
    "exclusion_prompt",
)
BOOLS = ("enable_graph", "multilingual", "decay")
LISTS = ("custom_categories", "retrieval_criteria")
ANY = ("usecase_setting",)
SETTABLE = (*STRINGS, *BOOLS, *LISTS, *ANY)
IGNORED = ("org_id", "project_id")  # the SDKs echo them; they name the project, they are not settings
# Settings the Platform defines that memserver keeps (GET returns them) but has no use for: PATCH says so.
INERT = {
    "memory_depth": "kept; memserver has no extraction depth levels, so it has no effect",
    "usecase_setting": "kept; memserver has no use-case presets, so it has no effect "
    "(custom_instructions and custom_categories shape what is extracted)",
    "retrieval_criteria": "kept; memserver does not weight search results by retrieval criteria, so it has no effect",
    "version": "kept; each client generation is served by its own routes, so it has no effect",
}


class ProjectSettings(BaseModel):
    """Every per-project setting the SDKs send; defaults are what an untouched project has."""

    custom_instructions: str | None = Field(None, description="Extraction instructions for user memories.")
    agent_custom_instructions: str | None = Field(None, description="Extraction instructions for agent memories.")
    custom_categories: list[Any] | None = Field(None, description="[{name: description}] or [name]; None = default.")
    enable_graph: bool = False
    multilingual: bool | None = Field(
        None,
        description="Unset or true: memories keep the language of the input; false: inferred memories are written "
        "in English.",
    )
    memory_depth: str | None = Field(None, description="Kept without effect: memserver has no extraction depths.")
    usecase_setting: Any = Field(None, description="Kept without effect: memserver has no use-case presets.")
    decay: bool = Field(False, description="Search scores are weighted by recency and recent reads (0.3x-1.5x).")
    retrieval_criteria: list[Any] | None = Field(
        None, description="Kept without effect: search is not weighted by retrieval criteria."
    )
    version: str | None = Field(None, description="Kept without effect: each client generation has its own routes.")
    inclusion_prompt: str | None = None
    exclusion_prompt: str | None = None

    def category_map(self) -> dict[str, str] | None:
        """custom_categories as {name: description} (a bare name describes itself); None when unset."""
        if self.custom_categories is None:
            return None
        out: dict[str, str] = {}
        for item in self.custom_categories:
            if isinstance(item, dict):
                out.update({str(k): str(v) for k, v in item.items()})
            else:
                out[str(item)] = str(item)
        return out


def from_row(row: ProjectRow) -> ProjectSettings:
    stored = dict(row.settings or {})
    stored.pop("profiles", None)
    known = {k: v for k, v in stored.items() if k in ProjectSettings.model_fields and v is not None}
    return ProjectSettings(
        **known, custom_instructions=row.custom_instructions, custom_categories=row.custom_categories
    )


class _Cache:
    """Settings read on the search path (decay) are cached briefly; updates in this process clear them."""

    def __init__(self, ttl_s: float = 2.0):
        self.ttl_s = ttl_s
        self.entries: dict[uuid.UUID, tuple[float, ProjectSettings]] = {}

    def get(self, project_id: uuid.UUID) -> ProjectSettings | None:
        hit = self.entries.get(project_id)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def put(self, project_id: uuid.UUID, value: ProjectSettings) -> None:
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[project_id] = (time.monotonic() + self.ttl_s, value)


_cache = _Cache()


async def project_settings(db: Database, project_id: uuid.UUID, *, cached: bool = False) -> ProjectSettings:
    """The project's settings (defaults for an unknown project). cached=True may be up to 2 s old."""
    if cached and (hit := _cache.get(project_id)) is not None:
        return hit
    async with db.connect() as conn:
        row = await TenantRepository(conn).get_project(project_id)
    value = ProjectSettings() if row is None else from_row(row)
    _cache.put(project_id, value)
    return value


def effective(settings: ProjectSettings, **request: Any) -> ProjectSettings:
    """The settings one request runs with: its own non-None values win over the project's."""
    given = {k: v for k, v in request.items() if v is not None and k in ProjectSettings.model_fields}
    return settings.model_copy(update=given)


def with_project_defaults(settings: ProjectSettings, inp: AddInput) -> AddInput:
    """An add with the project's settings filled in where the request gave none (request values win).

    For the inference pipeline: `inp = with_project_defaults(await project_settings(db, project_id), inp)`.
    """
    defaults = {
        "custom_instructions": settings.custom_instructions or None,
        "agent_custom_instructions": settings.agent_custom_instructions or None,
        "custom_categories": settings.category_map(),
        "includes": settings.inclusion_prompt or None,
        "excludes": settings.exclusion_prompt or None,
        "enable_graph": settings.enable_graph if settings.enable_graph else None,
    }
    missing = {k: v for k, v in defaults.items() if getattr(inp, k) is None and v is not None}
    return inp.model_copy(update=missing) if missing else inp


async def get_project(db: Database, principal: Principal) -> tuple[ProjectRow, list[MemberRoleRow]]:
    """The project row and its members (any role may read them)."""
    permissions.require_role(principal)
    async with db.connect() as conn:
        repo = TenantRepository(conn)
        row = await repo.get_project(principal.project_id)
        if row is None:
            raise NotFound(permissions.PROJECT_NOT_FOUND)
        return row, await repo.list_project_members(principal.project_id)


def _coerce(key: str, value: Any) -> Any:
    try:
        return _checked(key, value)
    except ValueError as exc:  # a limit (MEMSERVER_LIMITS__*): the instructions go into every prompt
        raise BadRequest(str(exc)) from None


def _checked(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in STRINGS:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "\n".join(value)  # the spec types custom_instructions as string[]; clients send a string
        if not isinstance(value, str):
            raise BadRequest(f"{key} must be a string")
        limits.check_chars(key, value)
    elif key in BOOLS:
        if not isinstance(value, bool):
            raise BadRequest(f"{key} must be true or false")
    elif key in LISTS:
        if not isinstance(value, list):
            raise BadRequest(f"{key} must be a list")
        if key == "custom_categories" and not all(isinstance(v, str | dict) for v in value):
            raise BadRequest("custom_categories must be a list of names or of {name: description} objects")
        if key == "custom_categories":
            limits.check_categories(value)
        else:
            limits.check_json_size(key, orjson.dumps(value))
    else:
        try:
            limits.check_json_size(key, orjson.dumps(value))
        except orjson.JSONEncodeError:
            raise BadRequest(f"{key} must be a JSON value") from None
    return value


def validate_changes(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings a body sets, checked (unknown keys ignored): (column values, values of the settings
    document). What PATCH applies, and what an import restores. Every bad one is named in one 400
    (`errors.invalid`: the message is the first one's, in the body's order)."""
    changes: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for k, v in body.items():
        if k in SETTABLE:
            try:
                changes[k] = _coerce(k, v)
            except BadRequest as exc:
                problems[k] = [exc.message]
    if "name" in changes and not changes["name"]:
        problems["name"] = ["name must not be empty"]
    if problems:
        raise invalid(problems)
    columns = {k: v for k, v in changes.items() if k in COLUMNS}
    stored = {k: v for k, v in changes.items() if k not in COLUMNS}
    return columns, stored


@dataclass(frozen=True)
class ProjectUpdate:
    """What a PATCH did: the settings set, a note for each that has no (or a qualified) effect, unknown keys."""

    changed: list[str]
    notes: list[dict[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


async def update_project(
    db: Database, principal: Principal, body: dict[str, Any], *, embedder: str = ""
) -> ProjectUpdate:
    """Set the given settings (null = back to the default); unknown keys are ignored and listed. `embedder` (the
    server's embedder name) qualifies what `multilingual` does for retrieval."""
    permissions.require_owner(principal, "changing project settings")
    columns, stored = validate_changes(body)
    async with db.transaction() as conn:
        repo = TenantRepository(conn)
        if await repo.get_project(principal.project_id) is None:
            raise NotFound(permissions.PROJECT_NOT_FOUND)
        await repo.update_project(principal.project_id, columns, stored)
    _cache.entries.pop(principal.project_id, None)
    ignored = sorted(k for k in body if k not in SETTABLE and k not in IGNORED)
    return ProjectUpdate(sorted({*columns, *stored}), notes(stored, embedder), ignored)


def notes(stored: dict[str, Any], embedder: str = "") -> list[dict[str, str]]:
    """A note for each setting a PATCH set whose effect a client would otherwise assume: the inert ones, and
    what `multilingual` does here. A list of objects, so a client that camel-cases keys keeps setting names."""
    out = [{"setting": k, "note": note} for k, note in INERT.items() if stored.get(k) is not None]
    if stored.get("multilingual") is False:
        note = "infer=true adds write memories in English, translating other languages; infer=false stores as sent"
        out.append({"setting": "multilingual", "note": note})
    elif stored.get("multilingual") is True and "MiniLM" in embedder:
        note = (
            "memories keep the language of the input; finding non-English memories depends on the embedder, and "
            "this server's all-MiniLM-L6-v2 is English-only (MEMSERVER_EMBEDDER__PROVIDER=openai for others)"
        )
        out.append({"setting": "multilingual", "note": note})
    return out


async def set_section(db: Database, project_id: uuid.UUID, name: str, value: dict[str, Any]) -> None:
    """Replace one section of the settings document (e.g. `profiles`)."""
    async with db.transaction() as conn:
        await TenantRepository(conn).update_project(project_id, {}, {name: value})


async def section(db: Database, project_id: uuid.UUID, name: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = await TenantRepository(conn).get_project(project_id)
    if row is None:
        raise NotFound(permissions.PROJECT_NOT_FOUND)
    value = (row.settings or {}).get(name)
    return dict(value) if isinstance(value, dict) else {}
