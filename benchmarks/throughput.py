"""Scoring throughput: the product path against naive baselines, measured in the same run on the same texts.

What is timed (after one warm-up call per method, on the same fixed set of ~400-token English texts):

* **product** - ``detector.token_stats.compute_token_stats`` (texts sorted by length and batched,
  ``--batch-size``; ONE forward pass per text yields log-prob, rank, entropy and the Fast-DetectGPT
  variance together) followed by ``sentence_spans`` + ``features.extract_features``; dtype ``auto``
  (bf16 only on CPUs with avx512_bf16/AMX, otherwise fp32 - see ``detector.lm.default_dtype``).
* **naive** - one text at a time, fp32, no batching, the same single pass (the issue's definition).
* **int8** - the product path with ``dtype="int8"`` (fp32 model, int8 transformer blocks, ``detector.quantize``):
  an experimental precision that ``auto`` never picks; shown so its speed is measured on each CPU kind.
* **multipass** - what typical single-feature detection scripts do when strung together: one text at a
  time, fp32, no batching, and a SEPARATE forward pass for each feature family:
  (1) perplexity / log-prob, (2) rank (full ``argsort`` of the vocabulary, as GLTR's reference code
  does) for log-rank, LRR and GLTR buckets, (3) entropy, (4) Fast-DetectGPT analytic curvature.
  That is 4 forward passes per text. The per-token arrays are then fed to the same
  ``extract_features``, so both methods output the same feature vector (the agreement is printed).

The last line compares against **naive** (batching + dtype only; on a CPU without avx512_bf16/AMX
both run fp32 and the gap is small). The multipass line adds the effect of 1 pass instead of 4.
Each method runs in its own subprocess so its peak RSS (``ru_maxrss``, which includes
loading the model) is its own. Tokens/s counts scored tokens (truncated at ``--max-tokens``); "tok/CPU-s"
divides by the process's CPU time instead, a steadier figure when other jobs share the cores.

``--emulate-avx2`` runs every worker with the ISA restricted to AVX2 (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2``) and the product at the
precision ``auto`` picks on an AVX2-only CPU (fp32): an emulation of the project's AVX2-only machines.

Usage: ``python benchmarks/throughput.py [--n-texts 16] [--lm embedded:smollm2] [--batch-size 8] [--emulate-avx2]``
The last line is ``throughput: <tok/s> tok/s, naive <tok/s> tok/s, speedup <x>x``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

RESULT_PREFIX = "THROUGHPUT_RESULT "
AVX2_ONLY_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                 "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}
# The targets: product vs the naive fp32 loop, and peak memory.
TARGET_SPEEDUP_NATIVE_BF16 = 1.4
TARGET_SPEEDUP_AVX2 = 1.2
TARGET_PEAK_RSS_MB = 2.5 * 1024
WORDS_PER_TEXT = 330  # ~400 tokens of plain English with GPT-2/SmolLM2-style tokenisers

SENTENCES = (
    "The committee met on Tuesday to review the budget for the new community centre.",
    "Most of the members agreed that the roof needed to be repaired before winter.",
    "She had never seen the ocean before, so the long drive to the coast felt like an adventure.",
    "Photosynthesis converts light energy into chemical energy stored in sugar molecules.",
    "In 1869 the first transcontinental railroad in the United States was completed in Utah.",
    "My grandfather kept a small notebook in which he recorded the weather every morning.",
    "The recipe calls for two cups of flour, a pinch of salt and three eggs beaten until pale.",
    "Researchers found that participants who slept less than six hours made more errors.",
    "A sudden storm forced the fishing boats to return to the harbour earlier than planned.",
    "The software update fixed several security problems but introduced a new bug in printing.",
    "Honestly, I think the second film was better than the first, although my sister disagrees.",
    "Volcanic eruptions can cool the global climate for a year or two by blocking sunlight.",
    "The museum will be closed on Monday while workers install the new lighting system.",
    "He apologised for being late, explaining that the bus had broken down near the bridge.",
    "Children learn languages remarkably quickly when they are surrounded by native speakers.",
    "The company reported a small profit in the third quarter despite rising energy costs.",
    "Our neighbours planted tomatoes, beans and sunflowers along the fence last spring.",
    "Critics praised the novel for its vivid characters but found the ending rushed.",
    "To reset the device, hold the power button for ten seconds until the light blinks.",
    "The river flooded the lower fields, and the farmers lost most of their wheat harvest.",
    "Many early astronomers believed that the planets moved on perfect circular orbits.",
    "After the match, the coach said the team had played with courage but lacked focus.",
    "I forgot my umbrella again, which is ridiculous given how often it rains here.",
    "The city council is considering a plan to turn the old factory into affordable housing.",
    "Bees communicate the location of flowers to each other through a kind of dance.",
    "The negotiations stalled when neither side was willing to compromise on wages.",
    "We stayed in a tiny hotel where the owner served homemade bread every morning.",
    "Antibiotics do not work against viruses, so they will not cure a common cold.",
    "The orchestra rehearsed the symphony for weeks before the opening night.",
    "According to the survey, most commuters would cycle more if the roads felt safer.",
    "The old lighthouse has been converted into a small museum about local shipwrecks.",
    "Why does the printer always jam when I am in a hurry to leave?",
    "Engineers tested the bridge by driving loaded trucks across it at different speeds.",
    "The village celebrates the end of the harvest with music, dancing and a long dinner.",
    "Water expands when it freezes, which is why pipes sometimes burst in cold weather.",
    "She finished the marathon in just under four hours, far faster than she expected.",
    "The library offers free classes on how to use spreadsheets and write a good resume.",
    "Historians still debate the causes of the economic collapse that followed the war.",
    "Please remember to lock the back door and switch off the lights before you go.",
    "The new vaccine was tested on thousands of volunteers across several countries.",
    "Our cat spends most of the afternoon asleep on the warm windowsill in the kitchen.",
    "Rising sea levels threaten low-lying islands and coastal cities around the world.",
    "The teacher asked the students to write a short essay about their favourite season.",
    "He repaired the bicycle himself, using a video tutorial and a borrowed set of tools.",
    "The price of coffee has risen sharply because of poor harvests in several regions.",
    "Nobody expected the quiet student in the back row to win the national science prize.",
    "Good documentation saves time, because new colleagues can answer their own questions.",
    "The mountain trail was steep and rocky, but the view from the summit was worth it.",
)


def build_texts(n_texts: int, words_per_text: int = WORDS_PER_TEXT) -> list[str]:
    """``n_texts`` deterministic English texts of about ``words_per_text`` words, in paragraphs."""
    texts = []
    for i in range(n_texts):
        order = list(SENTENCES)
        random.Random(1000 + i).shuffle(order)
        paragraphs, current, n_words, k = [], [], 0, 0
        while n_words < words_per_text:
            sentence = order[k % len(order)]
            current.append(sentence)
            n_words += len(sentence.split())
            k += 1
            if len(current) == 5:
                paragraphs.append(" ".join(current))
                current = []
        if current:
            paragraphs.append(" ".join(current))
        texts.append("\n\n".join(paragraphs))
    return texts


def cpu_flags() -> dict[str, bool]:
    """The CPU features that decide whether bf16 is fast here (Linux /proc/cpuinfo)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    return {name: name in flags for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# ----------------------------------------------------------------------------- the two methods


def run_product(lm, texts: list[str], batch_size: int, max_tokens: int) -> tuple[list[dict[str, float]], int]:
    """The product path: one batched pass for all statistics, then the features."""
    from detector.features import extract_features
    from detector.sentences import sentence_spans
    from detector.token_stats import compute_token_stats

    stats = compute_token_stats(lm, texts, max_tokens=max_tokens, batch_size=batch_size)
    feats = [extract_features(s, sentence_spans(t)) for s, t in zip(stats, texts)]
    return feats, sum(s.n_tokens for s in stats)


def run_fork(lm, top, texts: list[str], batch_size: int, max_tokens: int) -> tuple[list[dict[str, float]], int]:
    """The product path plus the DDL fork (``detector.tuned_top``): the pass also keeps the hidden state entering
    block L-k, and a copy of the top k blocks, the final norm and the LM head run on it for the tuned discrepancy.

    The copy's weights are the backbone's own (merged LoRA factors change no cost), so this times the fork
    before any adapter is trained.
    """
    import torch

    from detector.features import extract_features
    from detector.sentences import sentence_spans
    from detector.token_stats import compute_token_stats
    from detector.tuned_top import tuned_discrepancy

    stats = compute_token_stats(lm, texts, max_tokens=max_tokens, batch_size=batch_size,
                                hidden_layer=lm.num_layers - top.k)
    feats = []
    with torch.inference_mode():
        for s, t in zip(stats, texts):
            f = extract_features(s, sentence_spans(t))
            f["tuned_discrepancy"] = tuned_discrepancy(top, lm, s.hidden, s.token_ids)
            s.hidden = None
            feats.append(f)
    return feats, sum(s.n_tokens for s in stats)


def _naive_forward(lm, input_ids):
    import torch

    with torch.no_grad():
        return lm.model(input_ids).logits[0, :-1].float()


def run_naive(lm, texts: list[str], max_tokens: int) -> tuple[list[dict[str, float]], int]:
    """The issue's naive baseline: one text at a time, fp32, no batching (still one pass per text)."""
    return run_product(lm, texts, 1, max_tokens)


def run_multipass(lm, texts: list[str], max_tokens: int) -> tuple[list[dict[str, float]], int]:
    """The script-style baseline: per text, four separate fp32 forward passes, one per feature family."""
    import numpy as np
    import torch

    from detector.features import extract_features
    from detector.sentences import sentence_spans
    from detector.token_stats import TokenStats, tokenize

    feats, total = [], 0
    for text in texts:
        ids, offsets, _ = tokenize(lm, text, max_tokens)
        input_ids = torch.tensor([[lm.prefix_id] + ids], device=lm.device)
        targets = input_ids[0, 1:]
        # pass 1: perplexity (log-likelihood of each token)
        logits = _naive_forward(lm, input_ids)
        logprob = torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1)
        # pass 2: rank of each token (GLTR-style full sort of the vocabulary)
        logits = _naive_forward(lm, input_ids)
        order = torch.argsort(logits, dim=-1, descending=True)
        rank = (order == targets[:, None]).nonzero()[:, 1] + 1
        # pass 3: entropy of the predictive distribution
        logits = _naive_forward(lm, input_ids)
        probs = torch.softmax(logits, -1)
        entropy = -(probs * torch.log_softmax(logits, -1)).sum(-1)
        # pass 4: Fast-DetectGPT analytic mean / variance of log p under the model's own samples
        logits = _naive_forward(lm, input_ids)
        lprobs = torch.log_softmax(logits, -1)
        probs = lprobs.exp()
        mean_ref = (probs * lprobs).sum(-1)
        var_ref = (probs * lprobs.square()).sum(-1) - mean_ref.square()
        stats = TokenStats(token_ids=np.asarray(ids), offsets=offsets, logprob=logprob.numpy(),
                           rank=rank.numpy(), entropy=entropy.numpy(), var_ref=var_ref.clamp_min(0).numpy())
        feats.append(extract_features(stats, sentence_spans(text)))
        total += len(ids)
    return feats, total


def worker(args: argparse.Namespace) -> None:
    """Load the backbone, warm up once, time one method and print its result as one JSON line."""
    import torch

    from detector.lm import load_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    texts = build_texts(args.n_texts)
    t0 = time.perf_counter()
    dtype = {"product": args.product_dtype or None, "fork": args.product_dtype or None,
             "int8": "int8"}.get(args.worker, "float32")
    lm = load_lm(args.lm, device="cpu", dtype=dtype)
    runners = {"naive": run_naive, "multipass": run_multipass}
    load_s = time.perf_counter() - t0
    if args.worker == "fork":
        from detector.tuned_top import TunedTop

        top = TunedTop(lm.model, args.fork_k, args.fork_window or None)  # built before timing, as a bundle loads it

        def call(batch: list[str]) -> tuple[list[dict[str, float]], int]:
            return run_fork(lm, top, batch, args.batch_size, args.max_tokens)
    elif args.worker in ("product", "int8"):
        def call(batch: list[str]) -> tuple[list[dict[str, float]], int]:
            return run_product(lm, batch, args.batch_size, args.max_tokens)
    else:
        def call(batch: list[str]) -> tuple[list[dict[str, float]], int]:
            return runners[args.worker](lm, batch, args.max_tokens)
    call(texts[:1])  # warm-up
    rss_before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    feats, n_tokens = call(texts)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    print(RESULT_PREFIX + json.dumps({
        "method": args.worker, "dtype": lm.precision, "identity": lm.identity, "cpu_seconds": cpu_seconds,
        "isa": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(), "load_s": load_s, "seconds": seconds, "n_texts": len(texts),
        "n_tokens": n_tokens, "peak_rss_mb": peak_rss_mb(), "peak_rss_before_timing_mb": rss_before,
        "features": feats,
    }), flush=True)


# ----------------------------------------------------------------------------- driver


def run_in_subprocess(method: str, args: argparse.Namespace) -> dict:
    """Run one method in a fresh Python process (so its peak RSS is its own) and parse its result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, "--n-texts", str(args.n_texts),
           "--lm", args.lm, "--batch-size", str(args.batch_size), "--max-tokens", str(args.max_tokens),
           "--threads", str(args.threads), "--fork-k", str(args.fork_k),
           "--fork-window", str(args.fork_window)]
    if args.emulate_avx2:
        cmd += ["--product-dtype", "float32"]  # what auto picks on an AVX2-only CPU
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    if args.emulate_avx2:
        env.update(AVX2_ONLY_ENV)
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise SystemExit(f"{method} worker failed (exit code {proc.returncode}):\n{proc.stdout}")


def report(result: dict, passes: str) -> tuple[float, str]:
    """Print one method's numbers; return its tokens/s and a one-line summary."""
    tok_s = result["n_tokens"] / result["seconds"]
    print(f"  {result['method']:<8} {passes}: dtype {result['dtype']}, {result['threads']} threads, "
          f"{result['n_texts']} texts / {result['n_tokens']} tokens in {result['seconds']:.1f} s -> "
          f"{result['n_texts'] / result['seconds']:.2f} texts/s, {tok_s:.1f} tok/s "
          f"({result['n_tokens'] / result['cpu_seconds']:.1f} tok/CPU-s); "
          f"peak RSS {result['peak_rss_mb']:.0f} MB "
          f"({result['peak_rss_before_timing_mb']:.0f} MB after load + warm-up; load {result['load_s']:.1f} s)")
    return tok_s, result["dtype"]


def main(argv: list[str] | None = None) -> None:
    """Benchmark both methods and print the comparison (last line: the throughput summary)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-texts", type=int, default=16)
    parser.add_argument("--lm", default="embedded:smollm2", help="backbone spec (see detector.lm)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    parser.add_argument("--worker", choices=("product", "naive", "multipass", "int8", "fork"), help=argparse.SUPPRESS)
    parser.add_argument("--fork-k", type=int, default=0,
                        help="also time the product with the DDL fork over the top K blocks (0: skip); "
                             "the issue's bar: at most 1.5x the product's time per text")
    parser.add_argument("--fork-window", type=int, default=0,
                        help="the fork reads only the first N tokens of each text (a bundle's window; 0: all)")
    parser.add_argument("--product-dtype", default="", help=argparse.SUPPRESS)
    parser.add_argument("--skip-multipass", action="store_true", help="skip the slow 4-pass comparison")
    parser.add_argument("--skip-int8", action="store_true", help="skip the experimental int8 line")
    parser.add_argument("--emulate-avx2", action="store_true",
                        help="restrict every worker to AVX2 (torch, oneDNN, MKL, fbgemm) and run the product in fp32, "
                             "as auto does on AVX2-only CPUs")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return

    flags = cpu_flags()
    native_bf16 = (flags["avx512_bf16"] or flags["amx_bf16"]) and not args.emulate_avx2
    print(f"backbone {args.lm}; {args.n_texts} texts of ~{WORDS_PER_TEXT} words, max {args.max_tokens} tokens, "
          f"batch size {args.batch_size}")
    print("CPU flags: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items())
          + f"; {os.cpu_count()} logical CPUs; load average at start {os.getloadavg()[0]:.1f}")
    if args.emulate_avx2:
        print("EMULATING an AVX2-only CPU: " + " ".join(f"{k}={v}" for k, v in AVX2_ONLY_ENV.items())
              + "; product forced to float32 (auto's choice without avx512_bf16/AMX)")
    print("product = batched, 1 pass per text, dtype auto; naive = one text at a time, fp32, no batching "
          "(1 pass); multipass = naive plus 4 separate forward passes per text (perplexity, rank via argsort, "
          "entropy, Fast-DetectGPT), as separate single-feature scripts do")
    product = run_in_subprocess("product", args)
    naive = run_in_subprocess("naive", args)
    product_tok_s, product_dtype = report(product, "(1 pass/text, batched)")
    naive_tok_s, _ = report(naive, "(1 pass/text, unbatched, fp32)")
    if args.fork_k:
        fork = run_in_subprocess("fork", args)
        fork_tok_s, _ = report(fork, f"(1 pass/text, batched, + tuned top {args.fork_k} blocks"
                                       + (f" over the first {args.fork_window} tokens)" if args.fork_window else ")"))
        ratio = product_tok_s / fork_tok_s
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(f"fork: time per text {ratio:.2f}x the product's (bar: <= 1.5x -> {verdict});"
              f" peak RSS {fork['peak_rss_mb']:.0f} MB (bar {TARGET_PEAK_RSS_MB:.0f} MB -> "
              f"{'met' if fork['peak_rss_mb'] <= TARGET_PEAK_RSS_MB else 'NOT met'})")
    int8 = None if args.skip_int8 else run_in_subprocess("int8", args)
    if int8 is not None:
        int8_tok_s, _ = report(int8, "(1 pass/text, batched, int8 blocks; experimental, never auto)")
    if not args.skip_multipass:
        multipass = run_in_subprocess("multipass", args)
        multi_tok_s, _ = report(multipass, "(4 passes/text, unbatched, fp32)")
        print(f"multipass: {multi_tok_s:.1f} tok/s, product speedup over it {product_tok_s / multi_tok_s:.1f}x")
    print(f"product precision chosen: {product_dtype} (kernels: {product['isa']}; "
          f"bf16 needs avx512_bf16/AMX: {'present' if native_bf16 else 'absent'})")
    if int8 is not None:
        print(f"int8: {int8_tok_s:.1f} tok/s, {int8_tok_s / naive_tok_s:.2f}x the naive fp32 loop "
              f"({int8['n_tokens'] / int8['cpu_seconds'] / (naive['n_tokens'] / naive['cpu_seconds']):.2f}x per "
              "CPU-second)")
    print("peak RSS is per method: each ran in its own subprocess (ru_maxrss, includes model loading)")
    for name in ("mean_logprob", "mean_log_rank", "mean_entropy", "fast_detectgpt"):
        diff = max(abs(a[name] - b[name]) for a, b in zip(product["features"], naive["features"]))
        print(f"  feature agreement product vs naive {name}: max abs diff {diff:.2e}")
    for name in () if args.skip_multipass else ("mean_logprob", "mean_log_rank", "mean_entropy", "fast_detectgpt"):
        diff = max(abs(a[name] - b[name]) for a, b in zip(product["features"], multipass["features"]))
        print(f"  feature agreement product vs multipass {name}: max abs diff {diff:.2e}")
    target = TARGET_SPEEDUP_NATIVE_BF16 if native_bf16 else TARGET_SPEEDUP_AVX2
    speedup = product_tok_s / naive_tok_s
    cpu_speedup = (product["n_tokens"] / product["cpu_seconds"]) / (naive["n_tokens"] / naive["cpu_seconds"])
    rss = product["peak_rss_mb"]
    print(f"target ({'native bf16' if native_bf16 else 'no native bf16'}): product >= {target}x naive -> "
          f"{'met' if speedup >= target else 'NOT met'} ({speedup:.2f}x wall, {cpu_speedup:.2f}x per CPU-second); "
          f"peak RSS <= {TARGET_PEAK_RSS_MB:.0f} MB -> {'met' if rss <= TARGET_PEAK_RSS_MB else 'NOT met'} "
          f"({rss:.0f} MB); load average at end {os.getloadavg()[0]:.1f}")
    print(f"throughput: {product_tok_s:.1f} tok/s, naive {naive_tok_s:.1f} tok/s, "
          f"speedup {speedup:.1f}x")


if __name__ == "__main__":
    main()
