"""Key binding: a key bound to an entity (`memserver keys create --bind-user-id alice`) reaches only the
memories of that entity, through every route it may call.

A binding is a set of entity ids (`user_id`, `agent_id`) that every memory the key reads or writes must
carry. The rules, applied where each request meets the key:
- a filter (list, search, delete by entity) that names another value of a bound id is refused (403); the
  bound ids are then ANDed to it, so no filter shape (OR, NOT, wildcards) reaches past them;
- an add names the bound ids (they are filled in when missing; another value is refused), and an inferred
  add must write only memories that carry them;
- a memory (or an event) by id of another entity is "not found", as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from memserver.domain.filters import Bool, Cond, Node
from memserver.errors import Forbidden

BINDABLE = ("user_id", "agent_id")


def describe(binding: Mapping[str, str]) -> str:
    return " and ".join(f"{k} {v!r}" for k, v in binding.items())


def _refused(binding: Mapping[str, str], what: str) -> Forbidden:
    return Forbidden(f"This API key is bound to {describe(binding)}: {what}")


def _conds(node: Node) -> Iterable[Cond]:
    if isinstance(node, Cond):
        yield node
    else:
        for child in node.children:
            yield from _conds(child)


def _names_only(cond: Cond, value: str) -> bool:
    if cond.op == "eq":
        return bool(cond.value == value)
    if cond.op == "in" and isinstance(cond.value, list | tuple):
        return all(v == value for v in cond.value)
    return False


def confine_filter(binding: Mapping[str, str], node: Node | None) -> Node | None:
    """The filter, ANDed with the bound ids; 403 when it names another value of one (or a wildcard)."""
    if not binding:
        return node
    if node is not None:
        for cond in _conds(node):
            if cond.field in binding and not _names_only(cond, binding[cond.field]):
                raise _refused(binding, f"it cannot reach the memories of another {cond.field.removesuffix('_id')}")
    bound: list[Node] = [Cond(k, "eq", v) for k, v in binding.items()]
    return Bool("AND", (*bound, *([node] if node is not None else [])))


def confine_ids(binding: Mapping[str, str], ids: Mapping[str, str | None]) -> dict[str, str | None]:
    """An add's entity ids with the bound ones filled in; 403 when it names another value of one."""
    out = dict(ids)
    for k, v in binding.items():
        if out.get(k) not in (None, v):
            raise _refused(binding, f"it cannot add memories for another {k.removesuffix('_id')}")
        out[k] = v
    return out


def check_inferred_scopes(binding: Mapping[str, str], ids: Mapping[str, str | None]) -> None:
    """An inferred add with both user_id and agent_id writes the user's facts without the agent_id and the
    assistant's facts without the user_id (the agent's memories, shared by all its users): a bound key would
    write outside its binding, and read the other side's memories into the prompt, so it is refused."""
    if binding and ids.get("user_id") and ids.get("agent_id"):
        raise _refused(
            binding,
            "an inferred add naming both user_id and agent_id would also write the "
            + ("agent's shared memories" if "user_id" in binding else "user's own memories")
            + "; send it with only the bound id, or with infer=false",
        )


def allows(binding: Mapping[str, str], row: Any) -> bool:
    """Whether a row (a memory, a history entry) carries every bound id."""
    return all(getattr(row, k, None) == v for k, v in binding.items())


def allows_ids(binding: Mapping[str, str], ids: Mapping[str, Any]) -> bool:
    """The same, for ids held in a mapping (an add's event payload)."""
    return all(ids.get(k) == v for k, v in binding.items())
