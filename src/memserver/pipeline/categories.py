"""The default memory categories (Mem0 Platform's 15), used when neither the call nor the project sets its own."""

from __future__ import annotations

DEFAULT_CATEGORIES: dict[str, str] = {
    "personal_details": "name, age, where they live, languages, identity and background",
    "family": "family members, partners, friends, pets and relationships",
    "professional_details": "job, employer, role, career, skills, studies and education",
    "sports": "sports played or followed, teams, fitness activities",
    "travel": "trips taken or planned, places visited, travel preferences",
    "food": "diet, favourite dishes and drinks, allergies and food dislikes",
    "music": "artists, genres, instruments, concerts",
    "health": "conditions, medication, symptoms, wellbeing, doctors",
    "technology": "devices, software, programming, tools they use",
    "hobbies": "pastimes, crafts, games, reading, creative projects",
    "fashion": "clothing, style, brands, sizes",
    "entertainment": "films, series, books, podcasts, games they enjoy",
    "milestones": "life events and achievements with their dates (graduations, moves, births, weddings)",
    "user_preferences": "likes, dislikes and how they want things done (including by the assistant)",
    "misc": "anything worth remembering that fits no other category",
}


def catalogue(custom: list[dict[str, str]] | dict[str, str] | None) -> dict[str, str]:
    """The active catalogue: Mem0's per-call/project `[{name: description}]` list (or a dict), else the defaults."""
    if not custom:
        return dict(DEFAULT_CATEGORIES)
    items = custom.items() if isinstance(custom, dict) else (kv for entry in custom for kv in entry.items())
    out: dict[str, str] = {}
    for name, description in items:
        key = name.strip().lower()  # replies are matched case-insensitively (ExtractedFact drops unknown names)
        if key:
            out[key] = " ".join(str(description).split())
    return out or dict(DEFAULT_CATEGORIES)
