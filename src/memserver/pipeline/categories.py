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
