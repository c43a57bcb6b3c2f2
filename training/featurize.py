"""The expensive step, done once: one LM pass per text, cached in resumable shards.

Each shard holds, per text, the token statistics (for features and segment training) and the
hidden state entering block L-k (fp16), from which the classifier head trains without running
the frozen lower blocks again. Finished shards are skipped on restart.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from detector.lm import LanguageModel
from detector.normalize import normalize_text
from detector.token_stats import compute_token_stats

SHARD_SIZE = 64


def shard_paths(cache: Path, n_rows: int) -> list[Path]:
    return [cache / f"shard_{i:05d}.pt" for i in range(0, n_rows, SHARD_SIZE)]


def featurize(lm: LanguageModel, rows: pd.DataFrame, cache: Path, *, max_tokens: int, hidden_layer: int,
              batch_size: int = 8) -> None:
    """Fill ``cache`` with one shard per SHARD_SIZE rows (in ``rows`` order); resumes where it stopped."""
    cache.mkdir(parents=True, exist_ok=True)
    paths = shard_paths(cache, len(rows))
    todo = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    for i, path in tqdm(todo, desc="LM pass (shards)", unit="shard"):
        part = rows.iloc[i * SHARD_SIZE:(i + 1) * SHARD_SIZE]
        texts = [normalize_text(t).text for t in part["text"]]
        stats = compute_token_stats(lm, texts, max_tokens=max_tokens, batch_size=batch_size,
                                    hidden_layer=hidden_layer)
        payload = []
        for row_id, text, st in zip(part["id"], texts, stats):
            payload.append({
                "id": row_id, "text": text, "token_ids": st.token_ids, "offsets": st.offsets,
                "logprob": st.logprob, "rank": st.rank, "entropy": st.entropy, "var_ref": st.var_ref,
                "truncated": st.truncated, "hidden": st.hidden.to(torch.float16),
            })
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.rename(path)


def load_cache(cache: Path, n_rows: int) -> list[dict]:
    """All cached records in row order."""
    records: list[dict] = []
    for path in shard_paths(cache, n_rows):
        records.extend(torch.load(path, weights_only=False))
    return records
