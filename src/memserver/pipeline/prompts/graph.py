"""Graph memory in the extraction call (enable_graph): the instructions appended to the extraction system
text, the relation each fact may carry, and the prompt section listing the existing relations it may end.

The relations come from the same LLM call as the facts (`prompts.extract`). Entity resolution and the names
relations are keyed by are decisions of `pipeline.relation_extract`.
"""

from __future__ import annotations

from memserver.pipeline.relation_extract import ExtractedRelation, GraphContext

__all__ = ["SYSTEM", "ExtractedRelation", "render_context"]

# Appended to the extraction system text only when the add has enable_graph: the same call also returns
# the relations.
SYSTEM = """\
Graph memory is on: give each fact the relations it states between named entities, as "relations": \
[{"source", "source_type", "relationship", "target", "target_type", "valid_from", "valid_to", "replaces"}].
- source, target: entity names as written in the conversation; the speakers are the entities named under Graph.
- source_type, target_type: person, place, organization, object, event, concept or another short noun.
- relationship: short, timeless, snake_case (lives_in, works_at, sister_of, likes), from source to target.
- valid_from, valid_to: ISO dates when the relation started or ended, if the conversation says (absolute, \
computed from the observation date of the message's add); omit them otherwise.
- replaces: refs N of "rel N" existing relations that this relation ends (a new home ends lives_in the old \
one). Never for relations that can hold together (likes sushi does not end likes pizza). Omit when none.
A fact with no relation between named entities has "relations": [].
Example relation: {"source": "alice", "source_type": "person", "relationship": "lives_in", "target": "Lisbon", \
"target_type": "place", "valid_from": "2025-03-01", "replaces": [2]}"""


def render_context(ctx: GraphContext) -> str:
    """The user-message section listing the existing relations (`rel N: a -[r]-> b (since D)`)."""
    who = []
    if ctx.user_name:
        who.append(f'the user is the entity "{ctx.user_name}"')
    if ctx.agent_name:
        who.append(f'the assistant is the entity "{ctx.agent_name}"')
    lines = [f"Graph: {'; '.join(who)}." if who else "Graph:", "Existing relations:"]
    if not ctx.relations:
        lines.append("(none)")
    for r in ctx.relations:
        since = f" (since {r.valid_at:%Y-%m-%d})" if r.valid_at else ""
        lines.append(f"rel {r.ref}: {r.source} -[{r.relationship}]-> {r.target}{since}")
    return "\n".join(lines)
