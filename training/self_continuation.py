"""Base-model continuations sampled by the backbone itself: ``python -m training.self_continuation`` (see --help).

Why: of the six English sources only Lastde holds *continuations* (an open base model sampling on from the first 30
tokens of a human text; Mitchell et al. 2023, DetectGPT, and Bao et al. 2024, Fast-DetectGPT, build their test sets
this way). Held out, that kind of text is one no other source teaches, and the fold's combiner reads its curvature
backwards (the per-feature table of reports/six_source.md). This module makes that kind of text without taking it
from any source: the first ``PREFIX_TOKENS`` tokens of a train-split human text, continued by the backbone (top-k 40
or top-p 0.96 at temperature 1, the samplers of the DetectGPT/Fast-DetectGPT data builders, alternating), and that
human text, both cut to the same number of words. Each pair keeps the source its prefix came from (``origin``), so a
leave-one-source-out fold drops the pairs built on the held-out source's texts.

Generation is resumable: finished batches are kept as shards under ``<cache_dir>/self_continuation/<key>/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from detector.lm import DEFAULT_LM, LanguageModel, cache_dir, load_lm
from detector.normalize import normalize_text
from training.ddl_loso import MIN_WORDS, SIX_SOURCES, load_clean
from training.shortcuts import strip_shortcuts

PREFIX_TOKENS = 30
NEW_TOKENS = 200
# Humans shorter than this are not continued. A pair is cut to the shorter text, so short humans give short pairs:
# 60 words lets every source's length range teach the combiner (HC3-Plus's answers are ~50 words; at 120 it gave 6
# prefixes, and the continuations, all ~150 words, taught a length-bound reading that its fold paid for).
MIN_HUMAN_WORDS = 60
SAMPLERS = ({"top_k": 40, "top_p": 1.0}, {"top_k": 0, "top_p": 0.96})
SOURCE = "self_continuation"


def prefixes(df: pd.DataFrame, per_source: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_source`` train-split human texts of each source, long enough to cut a continuation against."""
    humans = df[(df["split"] == "train") & (df["label"] == "human")]
    humans = humans[humans["text"].str.split().str.len() >= MIN_HUMAN_WORDS]
    parts = [g.sample(frac=1.0, random_state=seed).head(per_source) for _, g in humans.groupby("source")]
    return pd.concat(parts).reset_index(drop=True)


def continue_texts(lm: LanguageModel, texts: list[str], sampler: dict, seed: int) -> list[str]:
    """Each text's first ``PREFIX_TOKENS`` tokens followed by ``NEW_TOKENS`` sampled tokens, decoded."""
    tok = lm.tokenizer
    ids = [tok(t, add_special_tokens=False).input_ids[:PREFIX_TOKENS] for t in texts]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    width = max(len(i) for i in ids)
    input_ids = torch.tensor([[pad] * (width - len(i)) + i for i in ids])  # left padding
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = lm.model.generate(input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device), do_sample=True,
                                temperature=1.0, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                pad_token_id=pad, **sampler)
    return [tok.decode(i + o[width:].tolist(), skip_special_tokens=True) for i, o in zip(ids, out)]


def cut_pair(human: str, ai: str) -> tuple[str, str] | None:
    """Both texts cleaned as training texts are and cut to the same number of words (as Lastde cuts its pairs);
    None when fewer than ``MIN_WORDS`` words remain."""
    h = normalize_text(strip_shortcuts(human)).text.split()
    a = normalize_text(strip_shortcuts(ai)).text.split()
    n = min(len(h), len(a))
    return None if n < MIN_WORDS else (" ".join(h[:n]), " ".join(a[:n]))


def run_dir(lm: LanguageModel, per_source: int) -> Path:
    key = json.dumps([lm.identity, PREFIX_TOKENS, NEW_TOKENS, SAMPLERS, per_source, MIN_HUMAN_WORDS])
    return cache_dir() / SOURCE / hashlib.sha256(key.encode()).hexdigest()[:12]


def generate(lm: LanguageModel, df: pd.DataFrame, per_source: int, batch_size: int = 16,
             max_seconds: float | None = None) -> pd.DataFrame | None:
    """The pairs (two rows each: the cut human text and the cut continuation, ``source`` = ``SOURCE``,
    ``origin`` = the prefix's source); None while unfinished (rerun to resume)."""
    folder = run_dir(lm, per_source)
    folder.mkdir(parents=True, exist_ok=True)
    todo = prefixes(df, per_source)
    t0 = time.perf_counter()
    for b, start in enumerate(range(0, len(todo), batch_size)):
        shard = folder / f"shard_{b:04d}.parquet"
        if shard.exists():
            continue
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            return None
        batch = todo.iloc[start:start + batch_size]
        conts = continue_texts(lm, batch["text"].tolist(), SAMPLERS[b % len(SAMPLERS)], seed=b)
        rows = []
        for (_, h), c in zip(batch.iterrows(), conts):
            pair = cut_pair(h["text"], c)
            if pair is None:
                continue
            pair_id = h["pair_id"] if pd.notna(h["pair_id"]) else h["id"]
            base = {"domain": h["domain"], "lang": "en", "pair_id": f"self:{pair_id}",
                    "source": SOURCE, "origin": h["source"], "split": "train"}
            rows.append({**base, "id": f"self:{h['id']}:h", "text": pair[0], "label": "human",
                         "generator": "human", "variant": None})
            rows.append({**base, "id": f"self:{h['id']}:a", "text": pair[1], "label": "ai",
                         "generator": lm.identity.split("@")[0], "variant": "continuation_of_human_prefix"})
        pd.DataFrame(rows).to_parquet(shard)
        print(f"[self-continuation] batch {b + 1}/{-(-len(todo) // batch_size)} "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("shard_*.parquet"))], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-source", type=int, default=100, help="human prefixes per training source")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--lm", default=DEFAULT_LM)
    args = ap.parse_args(argv)
    df = load_clean(list(SIX_SOURCES), args.data_dir)
    lm = load_lm(args.lm)
    max_seconds = None if args.max_minutes is None else 60 * args.max_minutes
    out = generate(lm, df, args.per_source, args.batch_size, max_seconds)
    if out is not None:
        print(f"[self-continuation] {len(out) // 2} pairs in {run_dir(lm, args.per_source)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
