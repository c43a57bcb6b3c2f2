"""One batched forward pass of a causal LM -> per-token statistics (and, optionally, a hidden state).

For every scored token t (predicted from the tokens before it) we keep:
``logprob`` log p(x_t), ``rank`` (1 = the model's top choice), ``entropy`` of p(.|x_<t), and
``var_ref`` = Var_{y~p}[log p(y)], the analytic variance term of Fast-DetectGPT (its mean term
is -entropy). Texts are sorted by length and batched to waste little padding; each text is
prefixed with a start token so its first real token is scored in context; texts longer than
``max_tokens`` are truncated (the caller is told through ``truncated``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from detector.lm import LanguageModel

DEFAULT_MAX_TOKENS = 512
# Padding budget for one batch (rows x longest row), keeps peak memory flat on CPU.
DEFAULT_BATCH_TOKENS = 4096


@dataclass
class TokenStats:
    """Per-token statistics of one text, aligned with ``offsets`` into the scored text."""

    token_ids: np.ndarray  # (n,) int
    offsets: np.ndarray  # (n, 2) character spans in the text
    logprob: np.ndarray  # (n,) float32
    rank: np.ndarray  # (n,) int, 1-based
    entropy: np.ndarray  # (n,) float32
    var_ref: np.ndarray  # (n,) float32
    truncated: bool = False
    hidden: torch.Tensor | None = None  # (n + 1, d) input of block L-k, prefix row first
    pooled: np.ndarray | None = None  # (len(pooled_layers), d) token-mean hidden states (prefix excluded), fp32

    @property
    def n_tokens(self) -> int:
        return int(self.token_ids.shape[0])


def tokenize(lm: LanguageModel, text: str, max_tokens: int) -> tuple[list[int], np.ndarray, bool]:
    """Token ids and character offsets of ``text`` (no special tokens), truncated to ``max_tokens``."""
    enc = lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    truncated = len(ids) > max_tokens
    return ids[:max_tokens], offsets[:max_tokens], truncated


def stats_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-position statistics of ``targets`` (n,) under next-token ``logits`` (n, V), in fp32."""
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    logp = logp_all.gather(-1, targets[:, None]).squeeze(-1)
    rank = (logp_all > logp[:, None]).sum(-1) + 1
    p = logp_all.exp()
    entropy = -(p * logp_all).sum(-1)
    # Var[log p] around its mean -entropy, centred first: E[x^2] - E[x]^2 cancels catastrophically in
    # fp32 when the entropy is high (~1e-4 absolute error); this form is as fast and ~100x more accurate.
    centred = logp_all + entropy[:, None]
    var_ref = torch.linalg.vecdot(p, centred.square_())
    return {"logprob": logp.cpu().numpy(), "rank": rank.cpu().numpy(),
            "entropy": entropy.cpu().numpy(), "var_ref": var_ref.cpu().numpy()}


def _batches(lengths: Sequence[int], batch_size: int, batch_tokens: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) >= batch_size or longest * (len(current) + 1) > batch_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@torch.inference_mode()
def compute_token_stats(lm: LanguageModel, texts: Sequence[str], *, max_tokens: int = DEFAULT_MAX_TOKENS,
                        batch_size: int = 8, batch_tokens: int = DEFAULT_BATCH_TOKENS,
                        hidden_layer: int | None = None,
                        pooled_layers: Sequence[int] = ()) -> list[TokenStats]:
    """Token statistics for each text from one forward pass; ``hidden_layer`` also keeps that layer's input.

    Texts with no tokens get empty arrays. ``hidden_layer`` indexes ``hidden_states`` (0 = embeddings,
    i = input of block i), so ``num_layers - k`` is what a top-k classifier head starts from.
    ``pooled_layers`` (same indexing) also keeps the token-mean of those layers, for linear-probe heads.
    """
    encoded = [tokenize(lm, t, max_tokens) for t in texts]
    lengths = [len(ids) + 1 for ids, _, _ in encoded]  # +1 for the prefix token
    results: list[TokenStats | None] = [None] * len(texts)
    pad_id = lm.prefix_id
    for batch in _batches(lengths, batch_size, batch_tokens):
        width = max(lengths[i] for i in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids = [lm.prefix_id] + encoded[i][0]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        out = lm.model(input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device),
                       output_hidden_states=hidden_layer is not None or bool(pooled_layers),
                       use_cache=False)
        for row, i in enumerate(batch):
            ids, offsets, truncated = encoded[i]
            n = len(ids)
            targets = input_ids[row, 1 : n + 1].to(lm.device)
            stats = stats_from_logits(out.logits[row, :n], targets)
            hidden = None
            if hidden_layer is not None:
                hidden = out.hidden_states[hidden_layer][row, : n + 1].detach().to("cpu").clone()
            pooled = None
            if pooled_layers:
                pooled = torch.stack([out.hidden_states[j][row, 1: n + 1].float().mean(0) if n else
                                      out.hidden_states[j][row, 0].float() for j in pooled_layers]).cpu().numpy()
            results[i] = TokenStats(token_ids=np.asarray(ids, dtype=np.int64), offsets=offsets,
                                    logprob=stats["logprob"], rank=stats["rank"].astype(np.int64),
                                    entropy=stats["entropy"], var_ref=stats["var_ref"],
                                    truncated=truncated, hidden=hidden, pooled=pooled)
        del out
    return results  # type: ignore[return-value]
