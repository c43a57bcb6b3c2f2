"""Batch scoring speed: a folder of essay-length texts through ``detector.batch.score_paths``.

Writes ``--n-files`` (default 200) deterministic essay-length .txt files to a temporary folder,
loads the detector (default bundle, or ``--bundle``), warms up, then times the whole batch:
reading, normalising, length-sorted batching across files, scoring, durable JSONL rows.
Last line: ``batch: <texts/s> texts/s, <tokens/s> tok/s``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-files", type=int, default=200)
    ap.add_argument("--bundle", default=None, help="bundle name or path (default: the shipped default)")
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args(argv)

    from throughput import build_texts

    from detector import Detector
    from detector.batch import score_paths

    det = Detector.load(a.bundle)
    det.score_many(build_texts(2))  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "essays"
        folder.mkdir()
        for i, text in enumerate(build_texts(a.n_files)):
            (folder / f"essay_{i:04d}.txt").write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        summary = score_paths(det, [folder], Path(tmp) / "results.jsonl", batch_size=a.batch_size, progress=False)
        seconds = time.perf_counter() - t0
    n_tokens = sum(int(r["n_tokens"] or 0) for r in summary.rows)
    print(f"bundle {det.bundle.name} on {det.lm.identity} ({det.lm.dtype}), max {det.max_tokens} tokens/text, "
          f"batch size {a.batch_size}")
    print(summary.format())
    print(f"{summary.n_files} files, {n_tokens} scored tokens in {seconds:.1f} s")
    print(f"batch: {summary.n_files / seconds:.2f} texts/s, {n_tokens / seconds:.1f} tok/s")


if __name__ == "__main__":
    main()
