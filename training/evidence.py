"""Per-text evidence for the six-source design, from one LM pass and a fork per DDL adapter, cached resumably.

For each text the pass (``detector.token_stats.compute_token_stats``) gives:

* the zero-shot features (``detector.features.extract_features``);
* the AdaDetectGPT witness moments summed over tokens (``detector.witness``): enough to score any witness
  ``beta`` fit later, so each fold fits its own without a new pass;
* the token-mean hidden states at the probe depths (``training.featurize.pooled_layers``);
* the hidden state entering block ``L - k``, from which each DDL adapter's tuned top blocks
  (``detector.tuned_top``) give that adapter's tuned discrepancy. The hidden state itself is not kept.

Records live in shards of ``SHARD_SIZE`` texts under ``<cache_dir>/evidence/<key>/``, keyed by the SHA-256 of
the text; the key names the backbone identity, precision, ``max_tokens``, ``k`` and the adapters, so a pass cut
off by the end of a session resumes, and a different setting never reads another's records.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from detector.features import extract_features
from detector.lm import LanguageModel, cache_dir
from detector.sentences import sentence_spans
from detector.token_stats import compute_token_stats
from detector.tuned_top import TunedTop, tuned_discrepancy
from training.featurize import pooled_layers, text_key

SHARD_SIZE = 64


def evidence_dir(lm: LanguageModel, max_tokens: int, k: int, adapters: Mapping[str, str],
                 witness: bool = True) -> Path:
    """The cache folder of one setting (backbone, precision, max_tokens, fork depth, witness, and each adapter's
    tag with the digest of its merged weights: two adapter settings under the same tags never share a cache).
    A fork-free pass does not depend on the fork depth, so its key leaves ``k`` out."""
    depth = k if adapters else None
    setting = [lm.identity, lm.precision, max_tokens, depth, sorted(adapters.items())]
    setting = json.dumps(setting + ([] if witness else ["no-witness"]))
    return cache_dir() / "evidence" / hashlib.sha256(setting.encode()).hexdigest()[:16]


def load_evidence(folder: Path) -> dict[str, dict]:
    """Every finished record of ``folder``, by text key."""
    out: dict[str, dict] = {}
    for shard in sorted(folder.glob("shard_*.pt")):
        out.update(torch.load(shard, weights_only=False))
    return out


def text_evidence(lm: LanguageModel, texts: Sequence[str], tops: dict[str, TunedTop], max_tokens: int,
                  k: int, witness: bool = True) -> list[dict]:
    """The evidence record of each text (see the module docstring); ``tops`` maps adapter tag -> tuned top.
    ``witness=False`` skips the witness moments (zeros in the record): they cost about as much as the pass."""
    stats = compute_token_stats(lm, texts, max_tokens=max_tokens,
                                hidden_layer=lm.num_layers - k if tops else None,
                                pooled_layers=pooled_layers(lm.num_layers), witness=witness)
    records = []
    for text, st in zip(texts, stats):
        n = st.n_tokens
        records.append({
            "features": extract_features(st, sentence_spans(text)),
            "n_tokens": n,
            "witness_residual": st.witness_residual.astype(np.float64).sum(0) if n and witness else np.zeros(8),
            "witness_cov": st.witness_cov.astype(np.float64).sum(0) if n and witness else np.zeros(15),
            "pooled": st.pooled.astype(np.float32),
            "tuned": {tag: tuned_discrepancy(top, lm, st.hidden, st.token_ids) for tag, top in tops.items()},
        })
    return records


def run_evidence(lm: LanguageModel, texts: Sequence[str], tops: dict[str, TunedTop], *, max_tokens: int, k: int,
                 batch_size: int = 8, max_seconds: float | None = None,
                 witness: bool = True) -> tuple[dict[str, dict], bool]:
    """Evidence for ``texts`` (normalised), resuming from the cache; returns (records by text key, finished).

    ``max_seconds`` stops after the shard that crosses it, so the pass can be split across sessions.
    """
    folder = evidence_dir(lm, max_tokens, k, {tag: top.adapter_digest for tag, top in tops.items()}, witness)
    folder.mkdir(parents=True, exist_ok=True)
    done = load_evidence(folder)
    todo = list(dict.fromkeys(t for t in texts if text_key(t) not in done))
    # a seeded random order, so a pass cut short has covered a fair sample of every source and label
    todo = [todo[i] for i in np.random.default_rng(0).permutation(len(todo))]
    print(f"[evidence] {len(texts) - len(todo)}/{len(texts)} texts cached in {folder}", file=sys.stderr)
    start = time.perf_counter()
    n_shard = len(list(folder.glob("shard_*.pt")))
    for a in range(0, len(todo), SHARD_SIZE):
        chunk = todo[a: a + SHARD_SIZE]
        shard: dict[str, dict] = {}
        for b in range(0, len(chunk), batch_size):
            part = chunk[b: b + batch_size]
            shard.update(zip(map(text_key, part), text_evidence(lm, part, tops, max_tokens, k, witness)))
        # a unique name: two passes sharing a key (e.g. a train pass and the continuations' pass) may run at once
        name = f"shard_{n_shard:05d}_{uuid.uuid4().hex[:8]}"
        tmp = folder / f"{name}.tmp"
        torch.save(shard, tmp)
        tmp.replace(folder / f"{name}.pt")
        n_shard += 1
        done.update(shard)
        elapsed = time.perf_counter() - start
        print(f"[evidence] {a + len(chunk)}/{len(todo)} new texts, {elapsed / (a + len(chunk)):.2f} s/text",
              file=sys.stderr)
        if max_seconds is not None and elapsed > max_seconds:
            return done, False
    return done, True
