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

import numpy as np
import pandas as pd

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


# A few KB of plain English prose (written for this repository), the training text of the fallback tokenizer
# that the tests build when the real GPT-2 tokenizer (../shared/gpt2-tokenizer) is not beside the clone.
ENGLISH_PROSE = """\
The library opens at nine in the morning, and by ten most of the tables near the windows are taken.
Students come in with their laptops and coffee, while older readers prefer the quiet corner with the newspapers.
Last winter the city council voted to extend the opening hours on weekends, because so many people asked for a
warm place to study. The decision cost a little more money for heating and staff, but the librarians say it was
worth it. On Saturday afternoons there is now a reading club for children, and a volunteer teaches basic computer
skills to anyone who wants to learn how to send an email or fill in a form online.
My grandfather kept a small notebook in which he recorded the weather every morning. He wrote down the
temperature, the direction of the wind and whether the swallows had come back yet. When he died we found forty
years of notebooks in a shoebox under his bed, and my aunt has been typing them into a spreadsheet ever since.
The committee met on Tuesday to review the budget for the new community centre. Most of the members agreed that
the roof needed to be repaired before winter, but nobody could agree on who should pay for the new kitchen.
After two hours of arguing they decided to ask the town for a grant and to hold a bake sale in the spring.
Photosynthesis converts light energy into chemical energy stored in sugar molecules. Plants take in carbon
dioxide through small openings in their leaves and release oxygen as a by-product. Without this process there
would be almost no oxygen in the air, and most life on Earth as we know it could not exist.
It was raining again when we reached the station, and of course the last train had already left. We sat on a
bench under the broken clock and shared the sandwiches my mother had packed, which were squashed but still good.
A taxi driver finally took pity on us and drove us home for half the usual price, talking about football the
whole way.
The company reported a small profit in the third quarter despite rising energy costs. Its chief executive said
that demand had been stronger than expected in Europe and that the new factory would open next year. Analysts
were cautious, pointing out that much of the profit came from selling an old office building.
Children learn languages remarkably quickly when they are surrounded by native speakers. Researchers think this
is partly because they are not afraid of making mistakes, and partly because they hear the same words again and
again in situations where the meaning is obvious. Adults can learn quickly too, but they usually need more
practice and more patience.
To reset the device, hold the power button for ten seconds until the light blinks. If the light does not blink,
check that the battery is charged and try again. Do not open the case yourself: the warranty does not cover
damage caused by repairs that were not made by an authorised service centre.
In conclusion, technology plays an important role in modern society. It is important to note that there are
many benefits and challenges. Furthermore, education helps students develop essential skills for the future.
Additionally, communities benefit when people work together toward common goals. Overall, this topic is complex
and requires careful consideration. Ultimately, a balanced approach is the most effective solution.
Honestly, I think the second film was better than the first, although my sister disagrees. She says the
story made no sense and the music was too loud, but I liked the long scene on the frozen lake, and the ending
made me laugh out loud. We argued about it all the way home and then watched the first one again to check.
A good editor weighs every word. She asks whether a word is needed, whether a shorter word would do, and whether
the last word of a sentence is the word the reader should remember. One word can change a whole paragraph.
word for word, the two letters were the same.
word by word, the child read the story aloud.
word of the day: patience.
"""


def tokenizer_training_text() -> str:
    """English text for the fallback byte-level BPE: the prose above plus the synthetic corpus's own words."""
    rng = random.Random(7)
    extra = [human_text(rng) for _ in range(20)] + [ai_text(rng) for _ in range(20)]
    return ENGLISH_PROSE + "\n".join(extra) + "\n"


def three_source_prepared(seed: int = 0, strength: float = 1.2):
    """A synthetic ``Prepared``: three sources whose humans sit at different places on one piece of evidence
    (zero-shot column 0, and the pooled state's first unit)."""
    from training.train import COMBINER_FEATURES, Prepared

    rng = np.random.default_rng(seed)
    sources = np.repeat(["A", "B", "C"], 300)
    n = len(sources)
    y = np.tile([0, 1], n // 2)
    split = np.tile(np.repeat(["train", "cal", "test"], [6, 2, 2]), n // 10)
    shift = {"A": 0.0, "B": 0.6, "C": -0.3}  # each source's humans sit somewhere else on the evidence
    signal = strength * y + np.asarray([shift[s] for s in sources]) * (y == 0) + rng.normal(0, 1, n)
    Z = rng.normal(0, 1, (n, len(COMBINER_FEATURES)))
    Z[:, 0] = signal
    pooled = rng.normal(0, 1, (n, 1, 8))
    pooled[:, 0, 0] += signal
    rows = pd.DataFrame({"source": sources, "split": split, "n_tokens": rng.integers(64, 256, n),
                         "label": np.where(y == 1, "ai", "human"), "generator": "g"})
    return Prepared(rows, [], [], Z, pooled, y, (0,))
