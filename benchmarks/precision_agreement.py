"""How much the backbone precision moves the shipped detector's answers: fp32 vs bf16 (and the int8 blocks).

Why: ``auto`` picks bf16 on CPUs with avx512_bf16/AMX and fp32 elsewhere, so the same essay is scored at
different precisions on different machines. This measures, on the sample essays in ``data/samples``
(top-level ``*.txt`` listed in ``labels.csv``):

* per text: P(AI) and verdict at each precision; label agreement with fp32; max and mean |delta P|;
* per token: mean |delta log p| against fp32 (the 0.05-nat bound the issue sets for a faster path).

Usage: ``python benchmarks/precision_agreement.py [--precisions float32 bfloat16 int8] [--out reports/precision.md]``
Prints a Markdown report (and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SAMPLES = REPO_ROOT / "data" / "samples"
LOGPROB_BOUND = 0.05


def sample_texts() -> tuple[list[str], list[str], list[str]]:
    """(file names, texts, true labels) of the sample essays listed in labels.csv."""
    with open(SAMPLES / "labels.csv") as fh:
        labels = {row["file"]: row["label"] for row in csv.DictReader(fh)}
    files = sorted(p for p in SAMPLES.glob("*.txt") if p.name in labels)
    return [p.name for p in files], [p.read_text() for p in files], [labels[p.name] for p in files]


def main(argv: list[str] | None = None) -> None:
    """Score the samples at each precision and print (or write) the comparison as Markdown."""
    import numpy as np
    import torch

    from detector import Detector
    from detector.lm import cpu_description
    from detector.token_stats import compute_token_stats

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16", "int8"])
    parser.add_argument("--bundle", default=None, help="bundle name or path (default: the shipped one)")
    parser.add_argument("--out", default=None, help="write the Markdown report here")
    args = parser.parse_args(argv)

    names, texts, truth = sample_texts()
    scores, stats, seconds = {}, {}, {}
    for precision in args.precisions:
        det = Detector.load(args.bundle, dtype=precision)
        det.score_many(texts[:1])  # warm-up
        t0 = time.perf_counter()
        scores[precision] = det.score_many(texts)
        seconds[precision] = time.perf_counter() - t0
        stats[precision] = compute_token_stats(det.lm, texts, max_tokens=det.max_tokens)
        bundle_name = det.bundle.name
    ref = args.precisions[0]
    lines = [
        "# Precision agreement: the shipped detector at each backbone precision",
        "",
        f"Command: `python benchmarks/precision_agreement.py --precisions {' '.join(args.precisions)}`  ",
        f"Bundle `{bundle_name}`, {len(texts)} sample essays from `data/samples` (the ones in `labels.csv`), "
        f"each scored on its first {det.max_tokens} tokens. CPU: {cpu_description()}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads.",
        "",
        "## Per text",
        "",
        "| file | truth | " + " | ".join(f"P(AI) {p} | label {p}" for p in args.precisions) + " |",
        "|---|---|" + "---|---|" * len(args.precisions),
    ]
    for i, name in enumerate(names):
        cells = []
        for p in args.precisions:
            s = scores[p][i]
            cells += ["-" if s.prob_ai is None else f"{s.prob_ai:.4f}", s.label]
        lines.append(f"| {name} | {truth[i]} | " + " | ".join(cells) + " |")
    lines += ["", f"## Against {ref}", "",
              "| precision | labels equal | max abs dP | mean abs dP | mean abs d log p per token (nats) | "
              f"within {LOGPROB_BOUND} nats | scoring time (s) |",
              "|---|---|---|---|---|---|---|"]
    for p in args.precisions:
        pairs = [(a.prob_ai, b.prob_ai) for a, b in zip(scores[ref], scores[p])
                 if a.prob_ai is not None and b.prob_ai is not None]
        dp = np.abs(np.asarray([a - b for a, b in pairs])) if pairs else np.zeros(1)
        same = sum(a.label == b.label for a, b in zip(scores[ref], scores[p]))
        dlp = np.concatenate([np.abs(a.logprob - b.logprob) for a, b in zip(stats[ref], stats[p])])
        lines.append(f"| {p} | {same}/{len(texts)} | {dp.max():.4f} | {dp.mean():.4f} | {dlp.mean():.4f} "
                     f"(n={dlp.size}) | {'yes' if dlp.mean() <= LOGPROB_BOUND else 'NO'} | {seconds[p]:.1f} |")
    lines += ["", "Scoring times are wall-clock on a shared machine (other jobs were running): indicative only.", ""]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
