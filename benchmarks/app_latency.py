"""Latency of one page request: scoring a ~300-word essay as the web page does (``return_tokens=True``).

Why: the page must answer while a person waits. The model and bundle are loaded once per server
(``st.cache_resource`` in ``app.py``), so what a user feels is the scoring call alone; that is what
is timed here, after one warm-up call, 5 times, reporting the median.

Usage: ``python benchmarks/app_latency.py [--bundle NAME_OR_PATH] [--repeats 5]``
The last line is ``app_latency: <median>s for <n> words``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

ESSAY = (
    "When our town decided to close the old swimming pool, many people were upset, and I was one of them. "
    "I had learned to swim there when I was six, holding on to the edge while my father counted to ten. "
    "The council explained that the building was more than fifty years old, that the roof leaked every winter, "
    "and that repairing the heating system alone would cost more than building a new pool somewhere else. "
    "At first these reasons sounded like excuses. Later, after I went to one of the public meetings, I started "
    "to understand the problem a little better.\n\n"
    "The engineer who spoke at the meeting showed photographs of cracks in the walls and rust on the pipes. "
    "She said that the pool used almost twice as much energy as a modern one of the same size, mostly because "
    "the windows were single glazed and the water lost heat all night. A new building could use solar panels "
    "on the roof and a heat pump, and it would be easier to reach by bus because it would stand next to the "
    "school. Some older residents argued that the old pool was part of the history of the town, and that "
    "something would be lost if it was simply knocked down. I think they were right about that as well.\n\n"
    "In the end the council found a compromise. The old building will not be demolished; instead it will "
    "become a small museum and a café, and the new pool will open next to the school in two years. Until then, "
    "the swimming club will travel to the neighbouring town twice a week on a bus paid for by the council. "
    "It is not a perfect solution, and the bus rides will be long in winter, but I believe it is fair. "
    "The most important lesson for me was that a difficult decision looks different once you listen to the "
    "people who have to make it, and that it is worth going to a meeting instead of only complaining online."
)


def main(argv: list[str] | None = None) -> int:
    """Load the detector, warm up, time the page's scoring call; print the median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None, help="bundle name or path (default: the shipped one)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (default 5)")
    args = parser.parse_args(argv)

    from detector import load

    t0 = time.perf_counter()
    det = load(bundle=args.bundle)
    print(f"load: {time.perf_counter() - t0:.2f}s (bundle {det.bundle.name}, backbone "
          f"{det.bundle.manifest['backbone']['identity']})")
    n_words = len(ESSAY.split())
    warm = det.score(ESSAY, return_tokens=True)
    print(f"warm-up: label {warm.label}, prob_ai {warm.prob_ai}, {warm.n_tokens} tokens scored")
    times = []
    for i in range(args.repeats):
        t = time.perf_counter()
        det.score(ESSAY, return_tokens=True)
        times.append(time.perf_counter() - t)
        print(f"run {i + 1}: {times[-1]:.3f}s")
    print(f"app_latency: {statistics.median(times):.3f}s for {n_words} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
