"""A small synthetic human/AI corpus in the shared JSON Lines format, made inside the tests.

"AI" texts are assembled from a few stock sentences (low variety, like templated output);
"human" texts are built from a wide, uneven vocabulary with irregular sentence lengths.
Every prompt (pair_id) gets one text of each kind, so grouped splitting is exercised.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

AI_SENTENCES = [
    "In conclusion, technology plays an important role in modern society.",
    "It is important to note that there are many benefits and challenges.",
    "Overall, this topic is complex and requires careful consideration.",
    "Furthermore, education helps students develop essential skills for the future.",
    "Additionally, communities benefit when people work together toward common goals.",
    "Ultimately, a balanced approach is the most effective solution.",
]
HUMAN_WORDS = (
    "my grandma kept bees behind the garage and honestly nobody liked them except her dog which "
    "barked at every single one anyway so last summer we drove north through rain mud potholes "
    "and a broken radio playing one station about tractors weather corn prices folk songs tired "
    "kids arguing over crisps maps sandwiches the old bridge near Hexham closed again Tuesday"
).split()


def human_text(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(5, 9)):
        words = rng.choices(HUMAN_WORDS, k=rng.randint(3, 16))
        sentences.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", "..."]))
    return " ".join(sentences)


def ai_text(rng: random.Random) -> str:
    return " ".join(rng.choices(AI_SENTENCES, k=rng.randint(4, 7)))


def make_corpus(folder: Path, n_pairs: int = 60, seed: int = 0, source: str = "synthetic") -> Path:
    """Write ``folder/<source>/data.jsonl.gz`` with 2 * n_pairs texts; returns the dataset folder."""
    rng = random.Random(seed)
    out = folder / source
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_pairs):
        for label in ("human", "ai"):
            text = human_text(rng) if label == "human" else ai_text(rng)
            if label == "ai" and i % 3 == 0:
                text = "\n" + text  # the leading-newline shortcut of real data; the loader must strip it
            rows.append({"id": f"{source}-{i}-{label}", "text": text, "label": label,
                         "generator": "human" if label == "human" else "templater", "domain": "essay",
                         "lang": "en", "pair_id": f"p{i}", "source": source, "variant": None})
    with gzip.open(out / "data.jsonl.gz", "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return out
