"""The profile schema a project gets before it chooses one."""

from __future__ import annotations

from typing import Any

# The user schema of a project that never chose one. Never stored: a better default later reaches every such
# project. No `additionalProperties: false`: an extra key a model adds is pruned, not worth a repair round.
DEFAULT_USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What this user's memories say about them, to personalise later conversations.",
    "properties": {
        "name": {"type": "string", "description": "The name the user goes by, if they stated it."},
        "location": {"type": "string", "description": "Where the user lives or is based: city, region or country."},
        "occupation": {"type": "string", "description": "The user's job, role, employer or field of study."},
        "languages": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Languages the user speaks or writes.",
        },
        "communication_style": {"type": "string", "description": "How the user likes answers: tone, length, format."},
        "interests": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Hobbies, topics and activities they care about.",
        },
        "preferences": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Standing likes and dislikes: food, travel, tools, brands.",
        },
        "goals": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Plans and goals the user is working towards.",
        },
        "relationships": {
            "type": "array",
            "description": "People in the user's life and how they relate to the user.",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The person's name or how the user refers to them."},
                    "relation": {"type": "string", "description": "How they relate to the user: sister, manager."},
                },
            },
        },
        "constraints": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Health, dietary, accessibility or other constraints to respect.",
        },
    },
}
