"""Fixed instructions of the extraction prompts (ours, not Mem0's). Kept compact: every add pays for them.

One call extracts facts from the new messages AND reconciles them with the existing memories shown,
so most adds cost a single LLM call (Mem0's pre-v3 pipeline needed two, its v3 one cannot update).
"""

from __future__ import annotations

_RECONCILE = """\
Reconcile every fact with the existing memories (shown as "ref N: text"):
- ADD: new information. No ref.
- UPDATE: the fact refines, corrects or changes a memory (they moved to another city, a plan got a new date, \
a preference changed). ref = that memory; text = the complete new memory, keeping what is still true of the old one.
- DELETE: the user asks to forget something, or a memory is contradicted and no replacement fact exists \
("I sold my car"). ref = that memory; text = that memory's text.
- NOOP: the fact is already known from a memory. ref = that memory.
Use only refs that are shown, each at most once. If a new fact replaces a memory, that is one UPDATE, \
not a DELETE plus an ADD. When unsure between ADD and UPDATE, choose ADD."""

_FIELDS = """\
Each fact has:
- text: one self-contained statement.
- speaker: "user" or "assistant", whoever stated it.
- sources: the numbers [n] of the messages it comes from.
- categories: names from the category list that fit (may be empty).
- action, and ref unless the action is ADD.
Reply with a JSON object {"facts": [...]} and nothing else; {"facts": []} when there is nothing to remember.
Example: {"facts": [{"text": "Is vegetarian since 2024", "speaker": "user", "sources": [1], \
"categories": ["food"], "action": "ADD"}, {"text": "Lives in Lisbon, moved from Porto in March 2025", \
"speaker": "user", "sources": [3], "categories": ["personal_details"], "action": "UPDATE", "ref": 2}]}"""

EXTRACT_SYSTEM = f"""\
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
observation date, e.g. "Ran a marathon on 2025-04-12".
- Follow the extra instructions given with the request.

{_RECONCILE}

{_FIELDS}"""

FOLLOWUP_SYSTEM = f"""\
You keep long-term memories. Facts were extracted from a conversation; reconcile each of them with the existing \
memories below. Keep each fact's text, speaker, sources and categories (you may merge a fact into the text of an \
UPDATE); choose its action and ref.

{_RECONCILE}

{_FIELDS}"""

# Appended to EXTRACT_SYSTEM only when the add has enable_graph: the same call also returns the relations.
GRAPH_SYSTEM = """\
Graph memory is on: give each fact the relations it states between named entities, as "relations": \
[{"source", "source_type", "relationship", "target", "target_type", "valid_from", "valid_to", "replaces"}].
- source, target: entity names as written in the conversation; the speakers are the entities named under Graph.
- source_type, target_type: person, place, organization, object, event, concept or another short noun.
- relationship: short, timeless, snake_case (lives_in, works_at, sister_of, likes), from source to target.
- valid_from, valid_to: ISO dates when the relation started or ended, if the conversation says (absolute, \
computed from the observation date); omit them otherwise.
- replaces: refs N of "rel N" existing relations that this relation ends (a new home ends lives_in the old \
one). Never for relations that can hold together (likes sushi does not end likes pizza). Omit when none.
A fact with no relation between named entities has "relations": [].
Example relation: {"source": "alice", "source_type": "person", "relationship": "lives_in", "target": "Lisbon", \
"target_type": "place", "valid_from": "2025-03-01", "replaces": [2]}"""
