"""The extraction task: ONE call extracts facts from an add's messages and reconciles them with the existing
memories shown (so most adds cost a single LLM call; Mem0's pre-v3 pipeline needed two, its v3 one cannot
update). The fixed instructions are ours, not Mem0's, and kept compact: every add pays for them.

`build(req)` renders the request; the LLM answers `reply_model(req)`, validated against the request through
`context(req)`; `reconcile.decide(req, reply)` turns the reply into decisions. No I/O here.

    gen = await llm.generate(extract.build(req), extract.reply_model(req), context=extract.context(req))
    decisions = reconcile.decide(req, gen.value)
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from memserver.pipeline.prompts import graph
from memserver.pipeline.relation_extract import ExtractedRelation
from memserver.pipeline.types import Action, ChatMessage, ExtractionRequest, Speaker

RECONCILE = """\
Reconcile every fact with the existing memories (shown as "ref N: text"):
- ADD: new information. No ref.
- UPDATE: the fact refines, corrects or changes a memory (they moved to another city, a plan got a new date, \
a preference changed). ref = that memory; text = the complete new memory, keeping what is still true of the old one.
- DELETE: the user asks to forget something, or a memory is contradicted and no replacement fact exists \
("I sold my car"). ref = that memory; text = that memory's text.
- NOOP: the fact is already known from a memory. ref = that memory.
Use only refs that are shown, each at most once. If a new fact replaces a memory, that is one UPDATE, \
not a DELETE plus an ADD. When unsure between ADD and UPDATE, choose ADD."""

FIELDS = """\
Each fact has:
- text: one self-contained statement.
- speaker: "user" or "assistant", whoever stated it.
- sources: the numbers [n] of the messages it comes from.
- categories: names from the category list that fit (may be empty).
- action, and ref unless the action is ADD.
- event_start, event_end: the dates the fact is about (YYYY-MM-DD, or YYYY-MM or YYYY if only that is known; \
end inclusive), computed from the observation date; omit both for a fact with no time (a trait, a preference).
Reply with a JSON object {"facts": [...]} and nothing else; {"facts": []} when there is nothing to remember.
Example: {"facts": [{"text": "Is vegetarian since 2024", "speaker": "user", "sources": [1], \
"categories": ["food"], "action": "ADD"}, {"text": "Lives in Lisbon, moved from Porto in March 2025", \
"speaker": "user", "sources": [3], "categories": ["personal_details"], "action": "UPDATE", "ref": 2, \
"event_start": "2025-03-01", "event_end": "2025-03-31"}]}"""

SYSTEM = f"""\
You keep long-term memories about the people in a conversation. Read the new messages, extract the facts \
worth remembering and reconcile them with the existing memories.

What to extract:
- Lasting facts a later conversation would need: personal details, family and relationships, work and studies, \
preferences and dislikes, plans and goals, health, possessions, events and their dates, opinions, decisions.
- Only facts stated by the requested speakers. Other messages, and every system message, are context: use them \
to understand, never as the source of a fact. A user agreeing to an assistant's suggestion is a user fact.
- Skip greetings, small talk, questions that state nothing, and things a speaker only repeats from the other.
- One fact per item, self-contained: names instead of pronouns; exact numbers, names and qualifiers; the \
language of the conversation. Never invent or infer what was not said.
- Write user facts about the user ("Has two daughters", "Prefers window seats") and assistant facts about the \
assistant ("Recommended the 2019 Rioja").
- Replace relative dates ("yesterday", "last month", "next Friday") with absolute dates computed from the \
observation date of the message's add, e.g. "Ran a marathon on 2025-04-12".
- Follow the extra instructions given with the request.

{RECONCILE}

{FIELDS}"""

_ACTION_ALIASES = {"NONE": "NOOP", "NO_OP": "NOOP", "CREATE": "ADD", "REMOVE": "DELETE"}


_DATE: dict[str, Any] = {"pattern": r"^\d{4}(-\d{2}(-\d{2})?)?$"}  # YYYY, YYYY-MM or YYYY-MM-DD
_DATE_PREFIX = re.compile(r"\s*(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2}))?)?(?:[T ][\d:.]+(?:Z|[+-][\d:]+)?)?\s*")
YEARS = (1900, 2200)  # a date outside them is a model's mistake


def event_date(value: Any) -> str | None:
    """A reply's event date as YYYY, YYYY-MM or YYYY-MM-DD (a datetime keeps its date); ValueError if it is none."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    m = _DATE_PREFIX.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError("not a date")
    year, month, day = int(m[1]), m[2], m[3]
    if not YEARS[0] <= year <= YEARS[1]:
        raise ValueError("not a plausible year")
    if day is not None:
        return date(year, int(month), int(day)).isoformat()
    if month is not None:
        return f"{date(year, int(month), 1):%Y-%m}"
    return f"{year:04d}"


def period_of(value: str) -> tuple[date, date]:
    """A reply's event date (`event_date`) as local days [first, after): a day, a whole month or a whole year."""
    parts = [int(p) for p in value.split("-")]
    if len(parts) == 3:
        first = date(*parts)
        return first, first + timedelta(days=1)
    if len(parts) == 2:
        first = date(parts[0], parts[1], 1)
        return first, date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return date(parts[0], 1, 1), date(parts[0] + 1, 1, 1)


class ExtractedFact(BaseModel):
    text: str = Field(description="One self-contained statement.")
    speaker: Speaker = Field(description="Who stated the fact.")
    sources: list[int] = Field(default_factory=list, description="Numbers of the messages it comes from.")
    categories: list[str] = Field(default_factory=list, description="Names from the category list.")
    action: Action = Field("ADD", description="ADD, UPDATE, DELETE or NOOP.")
    ref: int | None = Field(None, description="The existing memory's ref; absent for ADD.")
    # Described once, in the prompt (FIELDS): the schema is sent with every add, so it stays short.
    event_start: str | None = Field(None, json_schema_extra=_DATE)  # when it happened or began
    event_end: str | None = Field(None, json_schema_extra=_DATE)  # when it ended, inclusive

    @model_validator(mode="before")
    @classmethod
    def _event_dates(cls, data: Any, info: ValidationInfo) -> Any:
        # A date the model got wrong costs the fact its dates, not the fact itself (and no repair round trip).
        if not isinstance(data, dict) or ("event_start" not in data and "event_end" not in data):
            return data
        data = dict(data)
        dates = []
        for key in ("event_start", "event_end"):
            value = data.pop(key, None)
            try:
                dates.append(event_date(value))
            except ValueError:
                note(info, f"a fact's {key} {str(value)[:40]!r} is not a date of 1900-2200 (YYYY-MM-DD); dropped")
                dates.append(None)
        start, end = dates[0] or dates[1], dates[1] or dates[0]
        if start and end and period_of(end)[0] < period_of(start)[0]:
            start, end = end, start
        return {**data, "event_start": start, "event_end": end}

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("text is empty")
        return v

    @model_validator(mode="before")
    @classmethod
    def _one_speaker(cls, data: Any, info: ValidationInfo) -> Any:
        # Without a speaker, the fact is the one requested speaker's (when exactly one was requested).
        speakers = (info.context or {}).get("speakers")
        if isinstance(data, dict) and not data.get("speaker") and speakers and len(speakers) == 1:
            return {**data, "speaker": next(iter(speakers))}
        return data

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, v: Any) -> Any:
        # Small models write "add" or Mem0's "NONE"; accepting them costs nothing and saves a repair call.
        if isinstance(v, str):
            v = v.strip().upper()
            return _ACTION_ALIASES.get(v, v)
        return v

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) else v

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str], info: ValidationInfo) -> list[str]:
        # Unknown categories are dropped, not an error: a wrong tag is not worth an LLM round trip.
        known = (info.context or {}).get("categories")
        names = [c.strip().lower() for c in v]
        return list(dict.fromkeys(c for c in names if c and (known is None or c in known)))

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> ExtractedFact:
        """What a fact can still mean when it does not fit the request: an UPDATE of a memory that was not shown
        still states something (kept as an ADD, noted); a DELETE or NOOP of one states nothing (refused: the
        fact alone is dropped); an ADD's ref is ignored. Speakers and sources as in `_fit_sources`."""
        ctx = info.context or {}
        refs = ctx.get("refs")
        if self.action == "ADD":
            self.ref = None
        elif self.action == "UPDATE" and (self.ref is None or (refs is not None and self.ref not in refs)):
            shown = "without a ref" if self.ref is None else f"of ref {self.ref}, which was not shown,"
            note(info, f"an UPDATE {shown} was kept as an ADD")
            self.action, self.ref = "ADD", None
        if self.action != "ADD" and self.ref is None:
            raise ValueError(f"action {self.action} needs the ref of an existing memory")
        if refs is not None and self.ref is not None and self.ref not in refs:
            raise ValueError(f"ref {self.ref} is not one of the existing memories shown")
        if "speakers" in ctx and self.speaker not in ctx["speakers"]:
            raise ValueError(f"facts stated by the {self.speaker} were not requested")
        if "sources" in ctx:
            _fit_sources(self, ctx["sources"], info)
        return self


def note(info: ValidationInfo, text: str) -> None:
    """Say on the event what a reply model changed to understand the reply (the context's `notes`)."""
    notes = (info.context or {}).get("notes")
    if isinstance(notes, list):
        notes.append(text)


def _fit_sources(fact: ExtractedFact, roles: dict[int, str], info: ValidationInfo) -> None:
    """Sources are non-system messages of the request, one of them the speaker's: numbers that were not shown
    are removed; a fact without a usable source is attributed to every message of its speaker (noted)."""
    unknown = [i for i in fact.sources if i not in roles]
    if unknown and len(unknown) < len(fact.sources):
        note(
            info,
            f"sources {unknown} are not user or assistant messages of the conversation and were removed from a fact",
        )
    fact.sources = [i for i in fact.sources if i in roles]
    if fact.action not in ("ADD", "UPDATE") or any(roles[i] == fact.speaker for i in fact.sources):
        return
    own = [i for i, role in roles.items() if role == fact.speaker]
    if not own:
        raise ValueError(f"no message of the conversation is by the {fact.speaker}")
    if unknown and len(unknown) == len(fact.sources) + len(unknown):
        why = f"whose sources {unknown} are not user or assistant messages"
    elif fact.sources:
        why = f"whose sources {fact.sources} are not messages of the {fact.speaker}"
    else:
        why = "without sources"
    note(info, f"a fact {why} was attributed to every {fact.speaker} message")
    fact.sources = sorted({*fact.sources, *own})


class ExtractionReply(BaseModel):
    facts: list[ExtractedFact] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        # json_object mode cannot force the wrapper object; a bare list of facts is unambiguous.
        return {"facts": data} if isinstance(data, list) else data


class GraphExtractedFact(ExtractedFact):
    """A fact with the relations it states (enable_graph)."""

    relations: list[ExtractedRelation] = Field(default_factory=list, description="Relations the fact states.")


class GraphExtractionReply(ExtractionReply):
    """The reply with enable_graph: a separate model, so the schema of every other add stays compact."""

    facts: list[GraphExtractedFact] = Field(default_factory=list)  # type: ignore[assignment]


Reply = ExtractionReply


def reply_model(req: ExtractionRequest) -> type[ExtractionReply]:
    """The reply model of a request: with relations when the request has graph memory on."""
    return GraphExtractionReply if req.graph is not None else ExtractionReply


def relations_of(fact: ExtractedFact) -> list[ExtractedRelation]:
    return list(getattr(fact, "relations", None) or [])


def budget(req: ExtractionRequest) -> int:
    """The completion tokens this reply should need: a base, a quarter of the new messages' characters, some
    per memory shown (an UPDATE restates one), x1.6 with relations; at least 512. The adapter bounds it by its
    ceiling (MEMSERVER_LLM__MAX_TOKENS): a looping small model stops there instead of at its context length,
    and a bound is what gives `finish_reason: length` a meaning (then one continuation asks for the rest)."""
    chars = sum(len(m.text) for m in req.messages)
    tokens = max(512, 256 + chars // 4 + 24 * len(req.candidates))
    return int(tokens * 1.6) if req.graph is not None else tokens


def context(req: ExtractionRequest) -> dict[str, Any]:
    """The validation context that checks a reply against what this request showed the model."""
    return {
        "refs": frozenset(c.ref for c in req.candidates),
        "sources": req.source_roles(),
        "speakers": req.speakers,
        "categories": frozenset(req.categories),
        "relation_refs": frozenset(r.ref for r in req.graph.relations) if req.graph else frozenset(),
    }


def build(req: ExtractionRequest) -> list[ChatMessage]:
    """The system instructions, then one user message: the project's part, `---`, the add's part.

    Laid out from least to most variable for the endpoint's prefix cache (OpenAI, vLLM and llama.cpp reuse a
    prompt's unchanged beginning): the system text is the same for every add of every project; the project's
    categories and instructions come next, byte-identical between the adds of a project; then what each add
    changes (whose facts, the memories shown, the graph, the new messages with their observation date).
    """
    sections = [
        *add_header(req),
        "Existing memories:\n" + render_candidates(req),
        *([graph.render_context(req.graph)] if req.graph is not None else []),
        "New messages:\n" + render_groups(req),
    ]
    # The graph instructions are sent only with enable_graph: every other add keeps the compact prompt.
    system = SYSTEM if req.graph is None else f"{SYSTEM}\n\n{graph.SYSTEM}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user_message(req, sections)}]


def user_message(req: ExtractionRequest, add_sections: list[str]) -> str:
    """The project's part (categories, extra instructions), the fixed `---` line, then the add's sections."""
    project = ["Categories:\n" + "\n".join(f"- {name}: {desc}" for name, desc in req.categories.items())]
    instructions = _instructions(req)
    if instructions:
        project.append("Extra instructions:\n" + "\n".join(instructions))
    return "\n\n".join([*project, PROJECT_END, *add_sections])


PROJECT_END = "---"
IN_ENGLISH = "Write every memory in English, translating facts stated in other languages."


def add_header(req: ExtractionRequest) -> list[str]:
    return [_speaker_line(req.speakers)]


def _speaker_line(speakers: frozenset[Speaker]) -> str:
    if speakers == {"user"}:
        return "Extract facts stated by: user. Assistant messages are context only."
    if speakers == {"assistant"}:
        return (
            "Extract facts stated by: assistant (about itself, what it did, recommended or committed to). "
            "User messages are context only."
        )
    return "Extract facts stated by: user, assistant. Attribute each fact to whoever stated it."


def _instructions(req: ExtractionRequest) -> list[str]:
    """includes/excludes and custom instructions; agent_custom_instructions govern the assistant's facts; the
    project's language rule (multilingual=false). All are the project's or the request's: the same for the adds
    of a project that send none, so the prefix stays cacheable."""
    out = []
    if req.in_english:
        out.append(f"- {IN_ENGLISH}")
    if req.includes:
        out.append(f"- Pay particular attention to: {one_line(req.includes)}")
    if req.excludes:
        out.append(f"- Never extract: {one_line(req.excludes)}")
    user_rules = req.custom_instructions if "user" in req.speakers else None
    agent_rules = (req.agent_custom_instructions or req.custom_instructions) if "assistant" in req.speakers else None
    if user_rules and agent_rules and user_rules == agent_rules:
        out.append(f"- {one_line(user_rules)}")
    else:
        if user_rules:
            out.append(f"- For user facts: {one_line(user_rules)}")
        if agent_rules:
            out.append(f"- For assistant facts: {one_line(agent_rules)}")
    return out


def render_candidates(req: ExtractionRequest) -> str:
    if not req.candidates:
        return "(none)"
    lines = []
    for c in req.candidates:
        when = f" (noted {c.created_at:%Y-%m-%d})" if c.created_at else ""
        # "ref N:" rather than "[N]" so memory refs cannot be mistaken for message numbers.
        lines.append(f"ref {c.ref}: {one_line(c.text)}{when}")
    return "\n".join(lines)


def observed(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} {when.tzname() or 'UTC'} ({when:%A})"


def render_groups(req: ExtractionRequest) -> str:
    """Each add's observation date, then its messages: one numbered line per message with role and name,
    continuation lines indented, system messages marked as context."""
    lines = []
    for n, group in enumerate(req.groups, 1):
        head = f"Add {n} of {len(req.groups)}, observed" if len(req.groups) > 1 else "Observed"
        lines.append(f"{head} {observed(group.observed_at)}:")
        for m in group.messages:
            who = f"{m.role} ({one_line(m.name)})" if m.name else m.role
            if m.role not in ("user", "assistant"):
                who += " [context only]"
            body = "\n    ".join(line for line in m.text.strip().splitlines() if line.strip())
            lines.append(f"[{m.index}] {who}: {body}")
    return "\n".join(lines)


def one_line(text: str) -> str:
    return " ".join(text.split())
