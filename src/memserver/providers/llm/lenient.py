"""What a model meant: reply text + the reply model -> a validated value, without asking again.

Small local models wrap their JSON in prose, code fences and reasoning, quote it Python's way, cut it off at
their token limit, or answer another shape than asked (mem0ai/mem0 #3391, #4526, #4540, #4607). In order:

1. strip reasoning (`<think>`, `<thinking>`, `<reasoning>` blocks, a lone closing tag: the block began in the
   prompt template), NULs and lone surrogates (Postgres refuses both);
2. pick the JSON value: fenced blocks, else a strict `raw_decode` at each `{` / `[`; the LAST value shaped like
   the reply's root wins (models write drafts first). Only when nothing decodes strictly, `json_repair` on the
   span that starts at the root property (strict first: on a whole reply, json-repair turned
   `... {about travel}, here is the update: {"facts": ...}` into `{"update": ...}`);
3. coerce the shape against the reply model's JSON schema (`coerce.py`);
4. validate, dropping each list item that is invalid on its own (with a note) until the rest validates; the
   reply models downgrade what they can (an UPDATE of a ref not shown becomes an ADD) and note it;
5. verdict: usable (a valid item, or an explicitly empty answer), or nothing usable (no JSON, a scalar, every
   item dropped). A reply cut by its token limit drops its last item even when it validates: a cut
   `{"text": "Works at Acme as a sen` repairs into a valid, truncated fact.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import json_repair
from pydantic import BaseModel, ValidationError

from memserver.providers.llm.coerce import clean_strings, coerce_root, root_array, schema_of

MAX_STARTS = 200  # decode attempts per reply (mem0 PR #6043: scanning every brace of a long reply is quadratic)
MAX_SCAN_CHARS = 200_000
MAX_DROPS = 50

_BLOCK = re.compile(r"<(think|thinking|reasoning)>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_CLOSE = re.compile(r"</(?:think|thinking|reasoning)\s*>", re.IGNORECASE)
_OPEN = re.compile(r"<(?:think|thinking|reasoning)>", re.IGNORECASE)
_START = re.compile(r"[\[{]")
_FENCE = re.compile(r"(```|~~~)[ \t]*[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:\1|\Z)", re.DOTALL)


@dataclass
class Parsed:
    """A reply as understood: `value` when usable, the notes on what was changed or dropped, whether it was cut
    off, and (when cut) the complete items to show in a continuation."""

    value: BaseModel | None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why nothing was usable (for the repair round)
    cut: bool = False
    items_key: str | None = None  # the root array property ("facts"), when the reply model has one
    complete: list[Any] = field(default_factory=list)  # cut: the raw items kept (shown to a continuation)
    reasoned: bool = False  # the text carried a reasoning block

    @property
    def usable(self) -> bool:
        return self.value is not None


def strip_reasoning(text: str) -> tuple[str, bool]:
    """The text without reasoning blocks, and whether it had any."""
    out = _BLOCK.sub("", text)
    reasoned = out != text
    close = list(_CLOSE.finditer(out))
    if close:  # the block was opened by the prompt template (Qwen3) or written as `think>` (MiniMax)
        out, reasoned = out[close[-1].end() :], True
    opened = _OPEN.search(out)
    if opened:  # never closed: the reply was cut while reasoning
        out, reasoned = out[: opened.start()], True
    return out.replace("\x00", "").strip(), reasoned


def parse(
    text: str, model: type[BaseModel], context: dict[str, Any] | None = None, *, cut: bool | None = False
) -> Parsed:
    """Understand `text` as a `model` reply. `cut`: the server said the reply hit its token limit (None: the
    server did not say; then a reply whose JSON had to be closed counts as cut)."""
    body, reasoned = strip_reasoning(text)
    schema = schema_of(model)
    key = root_array(schema)
    notes: list[str] = []
    found, repaired = pick_json(body, schema, key)
    truncated = bool(cut) or (cut is None and repaired and not body.rstrip().endswith(("}", "]")))
    if found is None or not isinstance(found, (dict, list)):
        why = (
            "Invalid JSON: the reply holds no JSON object" if found in (None, "") else "the reply is not a JSON object"
        )
        return Parsed(None, problems=[why], cut=truncated, items_key=key, reasoned=reasoned)
    data = coerce_root(clean_strings(found), schema, notes)
    complete: list[Any] = []
    if truncated and key is not None and isinstance(data, dict) and isinstance(data.get(key), list):
        complete = data[key][:-1]  # the last item may be cut short even when it validates
        data = {**data, key: complete}
    value, problems, drops, model_notes = _validate(data, model, context, key)
    usable = value is not None and _says_something(found, data, key, value)
    return Parsed(
        value if usable else None,
        notes=_unique([*notes, *drops, *model_notes]),
        problems=problems or ([] if usable else ["the reply states nothing usable"]),
        cut=truncated,
        items_key=key,
        complete=complete,
        reasoned=reasoned,
    )


def pick_json(text: str, schema: dict[str, Any], key: str | None) -> tuple[Any, bool]:
    """The reply's JSON value, and whether it had to be repaired (see the module docstring)."""
    roots = set((schema.get("properties") or {}).keys())
    blocks = [m.group(2) for m in _FENCE.finditer(text)]
    decoded = [v for b in blocks for v in _decode_all(b)] or _decode_all(text)
    shaped = [value for _, _, value in decoded if _shaped(value, roots) or _numbers(value, schema, key)]
    if shaped:
        return shaped[-1], False
    at = _root_at(text, roots)
    # A root property inside a value that decoded is a wrapper ({"response": {"facts": ...}}: coerced later);
    # outside any (a cut or broken reply whose fragments decode), the reply is repaired from there.
    wrappers = [value for start, end, value in decoded if at is not None and start <= at < end]
    if wrappers:
        return wrappers[-1], False
    objects = [value for _, _, value in decoded if isinstance(value, dict)]
    if at is None and objects:  # another shape altogether (Mem0's {"memory": [...]}): coerced later
        return objects[-1], False
    span = _span(text, at)
    if not span.strip():
        return None, False
    repaired = json_repair.loads(span, skip_json_loads=True)
    if isinstance(repaired, list) and not _shaped(repaired, roots):  # several values came back
        repaired = _choose([v for v in repaired if isinstance(v, (dict, list))], roots)
    return repaired, True


def _decode_all(text: str) -> list[tuple[int, int, Any]]:
    """Every JSON object or array that decodes strictly, with where it starts and ends, scanning from each `{`
    or `[` (starts inside a decoded value are skipped)."""
    decoder = json.JSONDecoder()
    out: list[tuple[int, int, Any]] = []
    pos, starts = 0, 0
    text = text[:MAX_SCAN_CHARS]
    while starts < MAX_STARTS:
        match = _START.search(text, pos)
        if match is None:
            break
        starts += 1
        try:
            value, end = decoder.raw_decode(text, match.start())
        except ValueError:
            pos = match.start() + 1
            continue
        out.append((match.start(), end, value))
        pos = end
    return out


def _shaped(value: Any, roots: set[str]) -> bool:
    """Shaped like the expected root: an object with a root property, or a list of objects."""
    if isinstance(value, dict):
        return bool(roots & value.keys())
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _numbers(value: Any, schema: dict[str, Any], key: str | None) -> bool:
    """A bare list of numbers where the root's list holds numbers (a ranking answered as `[3, 1, 2]`)."""
    items = ((schema.get("properties") or {}).get(key) or {}).get("items") or {} if key is not None else {}
    return (
        items.get("type") in ("integer", "number")
        and isinstance(value, list)
        and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def _choose(values: list[Any], roots: set[str]) -> Any:
    shaped = [v for v in values if _shaped(v, roots)]
    if shaped:
        return shaped[-1]
    objects = [v for v in values if isinstance(v, dict)]
    return objects[-1] if objects else (values[-1] if values else None)


def _root_at(text: str, roots: set[str]) -> int | None:
    """Where an object opens with a root property (`{"facts"`, `{'facts'`, `{facts`)."""
    if not roots:
        return None
    names = "|".join(re.escape(r) for r in sorted(roots))
    at = re.search(r"\{\s*[\"']?(?:" + names + r")[\"']?\s*:", text)
    return at.start() if at is not None else None


def _span(text: str, at: int | None) -> str:
    """Where the JSON starts: at the root property, else the first `{` or `[`."""
    if at is not None:
        return text[at:]
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return text[min(starts) :] if starts else ""


def _validate(
    data: Any, model: type[BaseModel], context: dict[str, Any] | None, key: str | None
) -> tuple[BaseModel | None, list[str], list[str], list[str]]:
    """Validate, dropping each list item that is invalid on its own until the rest validates.

    Returns the value (None if the reply as a whole does not validate), the problems, the drop notes and the
    notes the reply model added. Each attempt gets a fresh notes list, so an item dropped later leaves none."""
    drops: list[str] = []
    for _ in range(MAX_DROPS):
        notes: list[str] = []
        try:
            return model.model_validate(data, context={**(context or {}), "notes": notes}), [], drops, notes
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            removals = _removals(errors)
            if not removals:
                return None, [_describe(e) for e in errors[:10]], drops, []
            for path, _ in removals:
                _remove(data, path)
            drops += [f"reply item {_path(path)} dropped: {reason}" for path, reason in sorted(removals)]
    return None, ["too many invalid items"], drops, []


def _removals(errors: list[Any]) -> list[tuple[tuple[Any, ...], str]]:
    """For each error, the innermost list item that holds it (its first error explains it); deepest and last first,
    so removing one does not shift another's index."""
    found: dict[tuple[Any, ...], str] = {}
    for err in errors:
        loc = tuple(err["loc"])
        cut = max((i for i in range(1, len(loc)) if isinstance(loc[i], int) and isinstance(loc[i - 1], str)), default=0)
        if not cut:
            return []  # an error outside any list item: the reply as a whole does not validate
        path = loc[: cut + 1]
        field_name = next((p for p in loc[cut + 1 :] if isinstance(p, str) and "[" not in p), None)
        found.setdefault(path, f"{field_name}: {_message(err)}" if field_name else _message(err))
    return sorted(found.items(), key=lambda kv: (len(kv[0]), kv[0]), reverse=True)


def _remove(data: Any, path: tuple[Any, ...]) -> None:
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]


def _path(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


def _message(err: Any) -> str:
    return str(err["msg"]).removeprefix("Value error, ")


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {_message(err)}" if loc else _message(err)


def _says_something(found: Any, data: Any, key: str | None, value: BaseModel) -> bool:
    """Usable: a valid item, or an explicitly empty answer ({"facts": []}, or {}); not every item dropped, and not
    an object that answers none of the reply's properties."""
    if key is None:
        return True
    items = getattr(value, key, None)
    if items:
        return True
    if isinstance(found, dict) and not found:
        return True
    raw = found.get(key) if isinstance(found, dict) else found
    return isinstance(data, dict) and key in data and (raw is None or raw == [])


def _unique(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))
