"""Entity scopes: the four entity kinds a memory belongs to, and their spellings on the wire."""

from __future__ import annotations

from dataclasses import dataclass

from memserver.errors import BadRequest

# entity type -> the memories column that holds it
ENTITY_TYPES: dict[str, str] = {"user": "user_id", "agent": "agent_id", "app": "app_id", "run": "run_id"}
ENTITY_FIELDS: tuple[str, ...] = tuple(ENTITY_TYPES.values())

# Path spellings of an entity type (`/v1/memories/users/alice/`, `/v2/entities/session/...`).
TYPE_ALIASES: dict[str, str] = {
    **{t: t for t in ENTITY_TYPES},
    **{f"{t}s": t for t in ENTITY_TYPES},
    "session": "run",
    "sessions": "run",
}


def entity_type(value: str) -> str:
    """The canonical entity type of a path spelling (`users` -> `user`); 400 for anything else."""
    try:
        return TYPE_ALIASES[value.lower()]
    except KeyError:
        raise BadRequest("Invalid entity type") from None


def entity_column(etype: str) -> str:
    return ENTITY_TYPES[etype]


@dataclass(frozen=True)
class Scope:
    """The entity ids a memory is stored under (at least one is set)."""

    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None

    def entities(self) -> list[tuple[str, str]]:
        """(type, name) of every id that is set."""
        return [(t, v) for t, col in ENTITY_TYPES.items() if (v := getattr(self, col)) is not None]

    def as_dict(self) -> dict[str, str | None]:
        return {col: getattr(self, col) for col in ENTITY_FIELDS}
