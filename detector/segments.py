"""Sentence-level evidence for highlighting: the same statistics, restricted to one sentence's tokens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detector.features import fast_detectgpt, gltr_buckets, mean_entropy, mean_log_rank, mean_logprob
from detector.features import token_sentence_index as token_sentence_index

SEGMENT_FEATURE_NAMES: tuple[str, ...] = (
    "mean_logprob", "mean_log_rank", "mean_entropy", "gltr_top10", "fast_detectgpt_per_token",
    "n_tokens", "classifier_logit",
)
SEGMENT_LOG_FEATURES = ("n_tokens",)
# Fewer tokens than this and a sentence gets no probability of its own.
MIN_SEGMENT_TOKENS = 4


def segment_features(logprob: np.ndarray, rank: np.ndarray, entropy: np.ndarray, var_ref: np.ndarray,
                     token_logits: np.ndarray | None, select: np.ndarray) -> dict[str, float]:
    """Features of the tokens picked by boolean mask ``select`` (see SEGMENT_FEATURE_NAMES)."""
    lp, rk, ent, var = logprob[select], rank[select], entropy[select], var_ref[select]
    n = len(lp)
    return {
        "mean_logprob": mean_logprob(lp), "mean_log_rank": mean_log_rank(rk), "mean_entropy": mean_entropy(ent),
        "gltr_top10": gltr_buckets(rk)[0], "fast_detectgpt_per_token": fast_detectgpt(lp, ent, var) / np.sqrt(n),
        "n_tokens": float(n),
        "classifier_logit": float(np.mean(token_logits[select])) if token_logits is not None else 0.0,
    }


def sentence_segment_features(logprob: np.ndarray, rank: np.ndarray, entropy: np.ndarray, var_ref: np.ndarray,
                              offsets: np.ndarray, token_logits: np.ndarray | None,
                              spans: Sequence[tuple[int, int]]) -> list[dict[str, float] | None]:
    """One feature dict per sentence span (None where it has fewer than MIN_SEGMENT_TOKENS scored tokens)."""
    index = token_sentence_index(offsets, spans)
    out: list[dict[str, float] | None] = []
    for s in range(len(spans)):
        select = index == s
        out.append(segment_features(logprob, rank, entropy, var_ref, token_logits, select)
                   if select.sum() >= MIN_SEGMENT_TOKENS else None)
    return out
