"""Gemma-3-270M (``embedded:gemma3``) as a backbone on this CPU: speed, memory, bf16 vs fp32.

    python benchmarks/gemma3_backbone.py [--dtypes float32 bfloat16] [--repeats 3] [--pause-file PATH]

For each precision, in a fresh child process (so peak memory is its own):

* **logits only**: one forward of the whole model on a batch of 8 x 256 tokens, full (8, 257, 262144) logits;
* **full statistics**: ``compute_token_stats`` (log-prob, rank, entropy, Fast-DetectGPT variance over the whole
  vocabulary) on the same 8 texts, as the detector runs it (head applied in chunks of positions);
* **unchunked statistics**: the same with the pre-chunking path (full logits, one block per text), for memory;
* peak RSS of each step (``VmHWM``, reset with ``/proc/self/clear_refs`` before each run of it).

The three steps run round-robin (interleaved), so load drift on a shared machine hits them alike.

Then the per-token log-probs of 3 Chinese and 3 English texts (first 256 tokens, one text at a time) are compared
between bf16 and fp32. Texts come from ``data/samples`` (Chinese: ``data/samples/zh``), so the numbers can be
reproduced from a clone. ``--pause-file`` creates that file while timing (the background LM pass of
``training.featurize`` pauses while a ``/tmp/pause-featurize*`` file exists) and waits ``--pause-wait`` seconds
for its current batch to finish; the file is removed as soon as the timing is done.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
BATCH, TOKENS = 8, 256


def sample_texts() -> tuple[list[str], list[str]]:
    """(Chinese, English) sample texts from data/samples, in name order."""
    zh = [p.read_text().strip() for p in sorted((SAMPLES / "zh").glob("*.txt"))]
    en = [p.read_text().strip() for p in sorted(SAMPLES.glob("*.txt"))]
    return zh, en


def long_enough(lm, texts: list[str], n: int, tokens: int) -> list[str]:
    """``n`` texts of at least ``tokens`` tokens: each sample, with the next ones appended until it is long enough."""
    from detector.token_stats import tokenize

    out = []
    for i in range(n):
        parts, j = [], i
        while len(tokenize(lm, "\n\n".join(parts), tokens + 1)[0]) < tokens + 1:
            parts.append(texts[j % len(texts)])
            j += 1
        out.append("\n\n".join(parts))
    return out


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def timed_interleaved(steps: dict, repeats: int) -> dict[str, dict[str, float]]:
    """Run the steps round-robin ``repeats`` times (A B C A B C ...: on a shared, noisy machine the load drifts,
    and interleaving spreads that drift over all steps); per step the median and best time and the peak RSS."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    peaks: dict[str, float] = dict.fromkeys(steps, 0.0)
    for _ in range(repeats):
        for name, fn in steps.items():
            reset_peak()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            peaks[name] = max(peaks[name], peak_rss_mb())
    return {name: {"seconds": statistics.median(ts), "best_seconds": min(ts), "peak_rss_mb": peaks[name]}
            for name, ts in times.items()}


def child(dtype: str, repeats: int, out: Path, pause_file: str | None, pause_wait: float) -> None:
    import torch

    from detector import token_stats
    from detector.lm import load_lm
    from detector.token_stats import compute_token_stats

    t0 = time.perf_counter()
    lm = load_lm("embedded:gemma3", device="cpu", dtype=dtype)
    load_s = time.perf_counter() - t0
    zh, en = sample_texts()
    batch_texts = long_enough(lm, zh, BATCH // 2, TOKENS) + long_enough(lm, en, BATCH // 2, TOKENS)
    ids = [[lm.prefix_id] + token_stats.tokenize(lm, t, TOKENS)[0] for t in batch_texts]
    assert all(len(x) == TOKENS + 1 for x in ids)
    input_ids = torch.tensor(ids)
    n_tokens = BATCH * TOKENS

    def logits_only() -> None:
        with torch.inference_mode():
            lm.model(input_ids=input_ids, use_cache=False).logits.float().sum()

    def full_stats() -> None:
        compute_token_stats(lm, batch_texts, max_tokens=TOKENS, batch_size=BATCH)

    def unchunked_stats() -> None:
        split, chunk = token_stats.split_head, token_stats.STATS_CHUNK_ELEMENTS
        token_stats.split_head, token_stats.STATS_CHUNK_ELEMENTS = (lambda lm: None), 1 << 40
        try:
            full_stats()
        finally:
            token_stats.split_head, token_stats.STATS_CHUNK_ELEMENTS = split, chunk

    logits_only()  # warm-up
    full_stats()
    after_load = peak_rss_mb()
    result = {"dtype": dtype, "threads": torch.get_num_threads(), "load_s": load_s, "rss_warmup_mb": after_load,
              "n_tokens": n_tokens, "load_avg_before": os.getloadavg()[0]}
    if pause_file:
        Path(pause_file).touch()
        time.sleep(pause_wait)
    paused_at = time.perf_counter()
    try:
        result["load_avg_at_start"] = os.getloadavg()[0]
        steps = {"logits_only": logits_only, "full_stats": full_stats, "unchunked_stats": unchunked_stats}
        for name, r in timed_interleaved(steps, repeats).items():
            result[name] = dict(r, tok_s=n_tokens / r["seconds"], best_tok_s=n_tokens / r["best_seconds"])
    finally:
        if pause_file:
            Path(pause_file).unlink(missing_ok=True)
    result["timing_s"] = time.perf_counter() - paused_at
    print(f"[{dtype}] timed for {result['timing_s']:.0f} s (+ {pause_wait:.0f} s pause wait)", file=sys.stderr)
    # log-probs for the precision comparison: one text at a time (no padding), first 256 tokens
    compare = {"zh": zh[:3], "en": en[:3]}
    logprobs = {f"{lang}{i}": compute_token_stats(lm, [t], max_tokens=TOKENS, batch_size=1)[0].logprob
                for lang, texts in compare.items() for i, t in enumerate(texts)}
    np.savez(out.with_suffix(".npz"), **logprobs)
    out.write_text(json.dumps(result))


def compare_logprobs(a: Path, b: Path) -> list[str]:
    """bf16 vs fp32 per-token log-prob differences, per language."""
    fa, fb = np.load(a), np.load(b)
    lines = ["| texts | tokens | mean abs diff (nats) | from the 2nd token on | max abs diff | correlation |",
             "|---|---|---|---|---|---|"]
    for lang in ("zh", "en", ""):
        keys = [k for k in fa.files if k.startswith(lang)]
        x = np.concatenate([fa[k] for k in keys])
        y = np.concatenate([fb[k] for k in keys])
        x2 = np.concatenate([fa[k][1:] for k in keys])
        y2 = np.concatenate([fb[k][1:] for k in keys])
        d = np.abs(x - y)
        label = {"zh": "3 Chinese", "en": "3 English", "": "all 6"}[lang]
        lines.append(f"| {label} | {len(x)} | {d.mean():.4f} | {np.abs(x2 - y2).mean():.4f} | {d.max():.3f} | "
                     f"{np.corrcoef(x, y)[0, 1]:.5f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pause-file", default=None, help="e.g. /tmp/pause-featurize.gemma")
    parser.add_argument("--pause-wait", type=float, default=30.0)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeats, Path(args.out), args.pause_file, args.pause_wait)
        return
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    print(f"CPU flags: {' '.join(sorted(flags & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'}))}; "
          f"{os.cpu_count()} cores")
    results, files = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in args.dtypes:
            out = Path(tmp) / f"{dtype}.json"
            cmd = [sys.executable, __file__, "--child", dtype, "--out", str(out), "--repeats", str(args.repeats),
                   "--pause-wait", str(args.pause_wait)]
            cmd += ["--pause-file", args.pause_file] if args.pause_file else []
            subprocess.run(cmd, check=True)
            results[dtype] = json.loads(out.read_text())
            files[dtype] = out.with_suffix(".npz")
        print(f"\nbatch {BATCH} x {TOKENS} tokens (+ <bos>); tok/s as median (best) of {args.repeats} interleaved runs "
              "after a warm-up\n")
        print("| precision | threads | logits only | full statistics (chunked) | unchunked statistics | "
              "peak RSS: load + warm-up / logits only / chunked / unchunked | load |")
        print("|---|---|---|---|---|---|---|")
        for dtype, r in results.items():
            speed = {k: f"{r[k]['tok_s']:.0f} ({r[k]['best_tok_s']:.0f}) tok/s"
                     for k in ("logits_only", "full_stats", "unchunked_stats")}
            print(f"| {dtype} | {r['threads']} | {speed['logits_only']} | {speed['full_stats']} | "
                  f"{speed['unchunked_stats']} | {r['rss_warmup_mb']:.0f} / {r['logits_only']['peak_rss_mb']:.0f} / "
                  f"{r['full_stats']['peak_rss_mb']:.0f} / {r['unchunked_stats']['peak_rss_mb']:.0f} MB | "
                  f"{r['load_s']:.1f} s |")
        print("\nload average (1 min) when timing started: "
              + ", ".join(f"{d}: {r['load_avg_at_start']:.1f}" for d, r in results.items()))
        if {"float32", "bfloat16"} <= set(files):
            print("\nbf16 vs fp32 per-token log-probs (first 256 tokens of each text, one text at a time)\n")
            print("\n".join(compare_logprobs(files["float32"], files["bfloat16"])))


if __name__ == "__main__":
    main()
