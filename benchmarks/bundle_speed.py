"""Two bundles, one run: time ``Detector.score_many`` on the same ~300-word texts, each bundle in fresh processes.

``python benchmarks/bundle_speed.py --baseline PATH [--candidate smollm2-en] [--rounds 3]``

Why: a bundle with discrepancy-trained evidence forks the tuned top blocks and reads the witness in its pass;
its cost is judged against the bundle it replaces, on the same CPU in the same run, end to end as a user scores
(normalise, pass, features, head, combiner, sentence shading). The two alternate (A B A B ...) so that a slow
moment of a shared machine hits both, and the median per bundle is compared. Peak RSS is each process's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
RESULT_PREFIX = "RESULT "


def worker(bundle: str, n_texts: int, words: int) -> None:
    from benchmarks.throughput import build_texts
    from detector import Detector

    texts = build_texts(n_texts, words)
    t0 = time.perf_counter()
    det = Detector.load(bundle)
    det.score_many(texts[:2])  # warm-up
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = det.score_many(texts)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(RESULT_PREFIX + json.dumps({"bundle": bundle, "seconds": seconds, "n_texts": len(texts),
                                      "n_tokens": sum(s.n_tokens or 0 for s in scores), "peak_rss_mb": peak,
                                      "precision": det.precision, "load_seconds": load}), flush=True)


def run(bundle: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", bundle, "--n-texts", str(args.n_texts), "--words", str(args.words)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise SystemExit(f"worker for {bundle} failed ({proc.returncode}):\n{proc.stdout}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", help="the bundle replaced (name or folder); required")
    ap.add_argument("--candidate", default="smollm2-en")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-texts", type=int, default=16)
    ap.add_argument("--words", type=int, default=300)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.n_texts, args.words)
        return 0
    if not args.baseline:
        ap.error("--baseline is required")
    from detector.lm import cpu_description

    results: dict[str, list[dict]] = {"baseline": [], "candidate": []}
    for _ in range(args.rounds):
        for name in ("baseline", "candidate"):
            r = run(getattr(args, name), args)
            results[name].append(r)
            print(f"  {name:9s} {r['bundle']}: {r['n_texts']} texts / {r['n_tokens']} tokens in {r['seconds']:.1f} s "
                  f"({r['precision']}); peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    med = {k: statistics.median(r["seconds"] / r["n_texts"] for r in v) for k, v in results.items()}
    peak = max(r["peak_rss_mb"] for r in results["candidate"])
    ratio = med["candidate"] / med["baseline"]
    print(f"CPU: {cpu_description()}")
    print(f"median time per ~{args.words}-word text: baseline {med['baseline']:.3f} s, candidate "
          f"{med['candidate']:.3f} s -> {ratio:.2f}x (bar <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'}); "
          f"candidate peak RSS {peak:.0f} MB (bar 2560 MB: {'met' if peak <= 2560 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
