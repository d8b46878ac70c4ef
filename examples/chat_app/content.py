"""Deterministic, varied chat content: topics, Unicode text, ids and timestamps.

Seeding and traffic draw everything from one ``random.Random`` so the same seed gives the
same database on every machine. Texts come from a few topics with distinct vocabularies
(and phrases in several scripts), so the hashed pseudo-embeddings of ``embed`` group by
topic and a search for "telescope planets" finds astronomy chunks.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone

TOPICS: dict[str, tuple[str, ...]] = {
    "astronomy": ("telescope", "planet", "planets", "orbit", "galaxy", "nebula", "comet", "saturn", "jupiter",
                  "eclipse", "star", "stars", "moon", "observatory", "light-year"),
    "cooking": ("recipe", "garlic", "onion", "simmer", "oven", "bake", "flour", "butter", "sauce", "basil",
                "risotto", "crème", "brûlée", "spice", "pan"),
    "gardening": ("tomato", "seedling", "compost", "soil", "prune", "roses", "watering", "mulch", "greenhouse",
                  "harvest", "bulbs", "weeds", "fertilizer", "seeds", "shade"),
    "programming": ("python", "function", "database", "sqlite", "query", "index", "transaction", "bug", "compile",
                    "refactor", "unicode", "thread", "lock", "schema", "migration"),
    "travel": ("flight", "passport", "hotel", "itinerary", "train", "luggage", "museum", "beach", "visa", "café",
               "kyoto", "lisbon", "reykjavík", "ferry", "hostel"),
    "finance": ("budget", "invoice", "interest", "mortgage", "savings", "dividend", "portfolio", "tax", "loan",
                "inflation", "pension", "stocks", "bonds", "expense", "receipt"),
}

FILLER = ("the", "a", "my", "about", "with", "for", "and", "how", "why", "please", "could", "you", "explain",
          "tell", "me", "more", "today", "again", "best", "way", "to")

UNICODE_PHRASES = (
    "merci beaucoup 🙏", "größte Sorge", "日本語のテキストです", "привет, как дела?", "¿qué tal?",
    "مرحبا بالعالم", "naïve façade", "👩‍💻 coding late", "ἀρετή", "한국어 문장", "zażółć gęślą jaźń",
    "emoji 🚀🌍✨", "tab\tand\nnewline", "quotes \"double\" and 'single'",
)

ROLES = ("user", "assistant", "system", "tool")
AGENTS = ("planner", "retriever", "summarizer", "calculator", "translator")
TOOLS = ("web_search", "sql_query", "calculator", "calendar", None)
MEDIA = (("image", "image/png"), ("image", "image/jpeg"), ("audio", "audio/ogg"),
         ("video", "video/mp4"), ("file", "application/pdf"), ("file", None))
DOC_TYPES = ("article", "manual", "faq", "note", "transcript")

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def new_id(rng: random.Random) -> str:
    """A uuid4-shaped text id drawn from ``rng`` (reproducible, unlike uuid.uuid4())."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def pick_topic(rng: random.Random) -> str:
    return rng.choice(sorted(TOPICS))


def sentence(rng: random.Random, topic: str, words: int = 12) -> str:
    """A sentence mostly of ``topic`` words, some filler, sometimes a Unicode phrase."""
    vocab = TOPICS[topic]
    parts = [rng.choice(vocab) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(words)]
    if rng.random() < 0.25:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(UNICODE_PHRASES))
    text = " ".join(parts)
    return text[0].upper() + text[1:] + rng.choice((".", "?", "!", "…"))


def paragraph(rng: random.Random, topic: str, sentences: int) -> str:
    return " ".join(sentence(rng, topic, rng.randint(6, 16)) for _ in range(sentences))


def title(rng: random.Random, topic: str) -> str:
    words = rng.sample(TOPICS[topic], 3)
    return f"{topic.capitalize()}: {' '.join(words)}"


def moment(rng: random.Random, *, days: int = 300) -> datetime:
    """A UTC instant within ``days`` after 2024-01-01, with microseconds."""
    return EPOCH + timedelta(seconds=rng.uniform(0, days * 86400))


def sqlite_timestamp(at: datetime) -> str:
    """The format of SQLite's CURRENT_TIMESTAMP: UTC, no zone, whole seconds."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def iso_timestamp(rng: random.Random, at: datetime) -> str:
    """ISO 8601 with a zone (Z, +00:00, or another offset) and sometimes fractions."""
    style = rng.randrange(3)
    if style == 0:
        return at.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if style == 1:
        return at.astimezone(timezone.utc).isoformat(timespec="seconds")
    offset = timezone(timedelta(hours=rng.choice((-8, -5, 1, 2, 5.5, 9))))
    return at.astimezone(offset).isoformat(timespec="milliseconds")


def unix_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def tool_calls(rng: random.Random, role: str) -> str | None:
    """JSON text of tool calls for assistant/tool messages; NULL otherwise (preset: "{}")."""
    if role not in ("assistant", "tool") or rng.random() < 0.5:
        return None
    name = rng.choice([t for t in TOOLS if t])
    return json.dumps({"calls": [{"name": name, "arguments": {"q": rng.choice(FILLER)}}]}, ensure_ascii=False)


def extra_data(rng: random.Random) -> str | None:
    """JSON text of free-form metadata, or NULL."""
    if rng.random() < 0.4:
        return None
    return json.dumps({"client": rng.choice(("web", "ios", "android", "cli")), "lang": rng.choice(("en", "fr", "ja")),
                       "flags": rng.sample(("pinned", "shared", "starred", "archived"), rng.randint(0, 2))},
                      ensure_ascii=False)


#: Id of the help-desk conversation (the traffic generator never touches it).
HELP_DESK_ID = "help-desk"

#: A help-desk conversation whose messages a semantic search must find by meaning: no
#: query in SEMANTIC_QUERIES shares a content word with its answer (checked with
#: all-MiniLM-L6-v2: every answer ranks first among these ten, by a cosine margin >= 0.2).
SUPPORT_FAQ = (
    "Steps to recover account access if you forgot your login credentials",
    "Refunds are credited to the original card within 5 business days",
    "The mobile app crashes on startup after the latest Android update",
    "Shipping usually takes three to five days; tracking numbers are emailed",
    "You can change the billing address and payment method in account settings",
    "Let's meet for lunch at the Italian place near the office on Friday",
    "The quarterly sales report shows revenue grew twelve percent",
    "My cat keeps knocking plants off the windowsill every morning",
    "Export all your conversations as a JSON file from the privacy page",
    "The weather forecast says heavy rain and thunderstorms this weekend",
)

#: query -> index in SUPPORT_FAQ of the message it must find first.
SEMANTIC_QUERIES = {
    "How do I reset my password?": 0,
    "When will I get my money back?": 1,
    "is it going to storm on Saturday": 9,
    "download a copy of my chat history": 8,
    "the application keeps closing when I open it on my phone": 2,
}
