"""The deterministic speed workload: short personal facts and questions about them (standard library only).

Both sides of the speed benchmark use it: ``bench.speed`` (memserver) and ``bench.mem0_peer`` (Mem0 OSS, in its own
virtualenv). ``speed`` writes the texts and questions to a file and the peer replays it (``--texts-file``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

LOCOMO_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev.json"


NAMES = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Luca",
    "Maya",
    "Nikolai",
    "Olivia",
    "Pedro",
    "Quinn",
    "Rosa",
    "Samir",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Yusuf",
    "Zoe",
    "Marco",
    "Leila",
    "Tom",
    "Priya",
    "Oscar",
    "Hannah",
    "Diego",
    "Sofia",
    "Kenji",
    "Amara",
    "Felix",
]


RELATIONS = [
    "sister",
    "brother",
    "mother",
    "father",
    "cousin",
    "best friend",
    "roommate",
    "aunt",
    "uncle",
    "grandmother",
    "grandfather",
    "neighbor",
    "colleague",
    "girlfriend",
    "boyfriend",
    "wife",
    "husband",
]


CITIES = [
    "Austin",
    "Lisbon",
    "Berlin",
    "Toronto",
    "Osaka",
    "Nairobi",
    "Denver",
    "Porto",
    "Seattle",
    "Madrid",
    "Melbourne",
    "Dublin",
    "Chicago",
    "Prague",
    "Boston",
    "Vienna",
    "Seoul",
    "Oslo",
    "Lyon",
    "Portland",
    "Montreal",
    "Edinburgh",
    "Kyoto",
    "Barcelona",
    "Helsinki",
    "Atlanta",
    "Cape Town",
    "Vancouver",
]


JOBS = [
    "nurse",
    "software engineer",
    "teacher",
    "accountant",
    "chef",
    "architect",
    "pharmacist",
    "lawyer",
    "graphic designer",
    "electrician",
    "dentist",
    "journalist",
    "data analyst",
    "firefighter",
    "librarian",
    "physiotherapist",
    "pilot",
    "veterinarian",
    "product manager",
    "carpenter",
    "social worker",
    "barista",
]


FOODS = [
    "sushi",
    "pad thai",
    "lasagna",
    "tacos",
    "ramen",
    "falafel",
    "pho",
    "paella",
    "dumplings",
    "curry",
    "pizza margherita",
    "Greek salad",
    "pancakes",
    "mushroom risotto",
    "bibimbap",
    "fish and chips",
]


DISLIKES = ["cilantro", "olives", "mushrooms", "spicy food", "blue cheese", "raw onions", "coconut", "liver"]


HOBBIES = [
    "rock climbing",
    "playing guitar",
    "painting",
    "running",
    "chess",
    "gardening",
    "baking sourdough",
    "photography",
    "yoga",
    "swimming",
    "knitting",
    "birdwatching",
    "salsa dancing",
    "cycling",
    "pottery",
    "hiking",
    "surfing",
    "playing piano",
    "woodworking",
    "bouldering",
    "tennis",
    "skiing",
]


PETS = [
    "a golden retriever",
    "a tabby cat",
    "two rabbits",
    "a parrot",
    "a corgi",
    "a black cat",
    "a hamster",
    "a beagle",
    "three goldfish",
    "a border collie",
    "a tortoise",
    "two kittens",
]


PET_NAMES = ["Milo", "Luna", "Biscuit", "Pepper", "Mochi", "Rex", "Daisy", "Oreo", "Ziggy", "Nala", "Toby"]


WHENS = [
    "last month",
    "last week",
    "in March",
    "two years ago",
    "in 2019",
    "last summer",
    "recently",
    "in January",
    "three months ago",
    "last spring",
    "in the fall",
    "a few weeks ago",
]


ALLERGIES = ["peanuts", "shellfish", "penicillin", "cats", "pollen", "gluten", "lactose", "bee stings"]


LANGS = ["Spanish", "Japanese", "Portuguese", "German", "Korean", "French", "Italian", "Mandarin", "Swahili"]


SPORTS_TEAMS = [
    "the Celtics",
    "Benfica",
    "the Blue Jays",
    "Arsenal",
    "the Broncos",
    "Real Madrid",
    "the Cubs",
]


BOOKS = ["Dune", "Middlemarch", "The Hobbit", "Beloved", "Norwegian Wood", "Project Hail Mary", "Circe"]


INSTRUMENTS = ["violin", "drums", "cello", "ukulele", "saxophone", "piano", "bass guitar", "flute"]


CARS = ["a Honda Civic", "a Tesla Model 3", "an old Volvo", "a Subaru Outback", "a Mini Cooper", "a bicycle"]


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


NUMBERS = [str(n) for n in range(2, 13)]


FACT_TEMPLATES = [
    "I moved to {city} {when}.",
    "My {rel} {name} is a {job} in {city}.",
    "I work as a {job} at a small company in {city}.",
    "My favorite food is {food}.",
    "I can't stand {dislike}, please never suggest it.",
    "I have {pet} named {petname}.",
    "I've been into {hobby} since {when}.",
    "I'm allergic to {allergy}.",
    "I'm learning {lang} because my {rel} lives in {city}.",
    "My {rel} {name} just started {hobby}.",
    "I usually go {hobby2} on {day} mornings.",
    "I'm a big fan of {team}.",
    "I'm currently reading {book}.",
    "I play the {instrument} in a community band.",
    "I drive {car} to work.",
    "My {rel}'s name is {name}.",
    "I grew up in {city} but now live in {city2}.",
    "I'm planning a trip to {city} {future}.",
    "My {rel} {name} is allergic to {allergy}.",
    "I have {number} kids and the oldest is into {hobby}.",
    "I had {food} for dinner with {name} {when}.",
    "I prefer tea over coffee in the morning.",
    "My birthday is on a {day} this year and I'm turning {age}.",
    "I switched jobs {when} and now I'm a {job}.",
    "My {rel} {name} moved to {city} {when}.",
    "I'm vegetarian but I still eat {food2} sometimes.",
    "I want to get better at {hobby} this year.",
    "I met {name} at a {hobby} class in {city}.",
    "My doctor told me to cut back on {dislike}.",
    "I speak {lang} and a little {lang2}.",
    "I ran a half marathon in {city} {when}.",
    "My {rel} {name} works night shifts as a {job}.",
    "I adopted {pet} {when}.",
    "I'm saving up to buy {car}.",
    "My favorite band is playing in {city} {future}.",
    "I volunteer at the animal shelter every {day}.",
]


FUTURES = ["next month", "in June", "next summer", "this winter", "in two weeks", "next year", "in October"]


QUESTION_TEMPLATES = [
    "Where do I live now?",
    "What does my {rel} do for work?",
    "Where does my {rel} live?",
    "What is my job?",
    "What food do I like?",
    "What should I avoid eating?",
    "What pets do I have?",
    "What is my pet's name?",
    "What are my hobbies?",
    "What am I allergic to?",
    "Which languages am I learning?",
    "Which team do I support?",
    "What book am I reading?",
    "What instrument do I play?",
    "How do I get to work?",
    "Who is {name}?",
    "Where did I grow up?",
    "Where am I traveling soon?",
    "How many kids do I have?",
    "When did I move to {city}?",
    "Do I drink coffee or tea?",
    "When is my birthday?",
    "When did I change jobs?",
    "Am I vegetarian?",
    "Where did I meet {name}?",
    "What did my doctor tell me?",
    "Have I run any races?",
    "What does {name} do?",
    "Do I volunteer anywhere?",
    "What car do I want to buy?",
    "Is anyone in my family a {job}?",
    "What do I do on {day} mornings?",
    "What did I eat with {name}?",
    "Which concert am I going to?",
]


def _fill(template: str, rng: random.Random) -> str:
    city, city2 = rng.sample(CITIES, 2)
    lang, lang2 = rng.sample(LANGS, 2)
    food, food2 = rng.sample(FOODS, 2)
    return template.format(
        city=city,
        city2=city2,
        when=rng.choice(WHENS),
        rel=rng.choice(RELATIONS),
        name=rng.choice(NAMES),
        job=rng.choice(JOBS),
        food=food,
        food2=food2,
        dislike=rng.choice(DISLIKES),
        pet=rng.choice(PETS),
        petname=rng.choice(PET_NAMES),
        hobby=rng.choice(HOBBIES),
        hobby2=rng.choice(HOBBIES),
        allergy=rng.choice(ALLERGIES),
        lang=lang,
        lang2=lang2,
        team=rng.choice(SPORTS_TEAMS),
        book=rng.choice(BOOKS),
        instrument=rng.choice(INSTRUMENTS),
        car=rng.choice(CARS),
        day=rng.choice(DAYS),
        number=rng.choice(NUMBERS),
        age=rng.randint(19, 71),
        future=rng.choice(FUTURES),
    )


def generate_texts(count: int, seed: int) -> list[str]:
    """``count`` distinct short personal facts, deterministic for ``seed``."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        text = _fill(rng.choice(FACT_TEMPLATES), rng)
        if text in seen:
            if attempts > 50 * count:  # template space exhausted: make it distinct but still natural
                text = f"{text[:-1]}, as I mentioned before ({len(out)})."
            else:
                continue
        seen.add(text)
        out.append(text)
    return out


def generate_queries(count: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    return [_fill(rng.choice(QUESTION_TEMPLATES), rng) for _ in range(count)]


def locomo_texts(path: Path) -> tuple[list[str], list[str]]:
    """Turns (``"<speaker>: <text>"``) and questions of the LoCoMo dev file, in file order."""
    data = json.loads(path.read_text())
    texts: list[str] = []
    queries: list[str] = []
    for sample in data:
        conv = sample["conversation"]
        n = 1
        while f"session_{n}" in conv:
            for turn in conv[f"session_{n}"]:
                text = f"{turn['speaker']}: {turn['text']}"
                if turn.get("blip_caption"):
                    text += f" [shares a photo: {turn['blip_caption']}]"
                texts.append(text)
            n += 1
        queries.extend(q["question"] for q in sample["qa"])
    return texts, queries
