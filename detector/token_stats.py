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
from dataclasses import dataclass, field

import numpy as np
import torch

from detector.lm import LanguageModel
from detector.witness import witness_moments

DEFAULT_MAX_TOKENS = 512
# Padding budget for one batch (rows x longest row), keeps peak memory flat on CPU.
DEFAULT_BATCH_TOKENS = 4096
# Logits held at once by the vocabulary-wide statistics (~128 MB in fp32, times the few temporaries of
# ``_stats_block``). Why: Gemma 3's 262k-token vocabulary makes (batch x tokens x vocab) logits 2 GB for 8 x 256
# tokens; chunks of positions keep memory flat (128 positions per chunk there, whole texts for 50k vocabularies).
STATS_CHUNK_ELEMENTS = 1 << 25
# Causal LMs whose logits are exactly ``lm_head(base_model(...).last_hidden_state)`` (then Gemma's optional
# final soft-capping): for these the head is applied chunk by chunk and full logits never exist.
SPLIT_HEAD_MODEL_TYPES = frozenset({"gpt2", "llama", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3", "mistral"})


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
    layer_states: torch.Tensor | None = None  # (len(token_layers), n, d) per-token hidden states, fp32
    # AdaDetectGPT witness moments per token (``detector.witness``): residual (n, K), packed covariance (n, 2K-1)
    witness_residual: np.ndarray | None = None
    witness_cov: np.ndarray | None = None
    # document-level evidence computed from this pass by the detector (the tuned discrepancy, the witness)
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return int(self.token_ids.shape[0])


def tokenize(lm: LanguageModel, text: str, max_tokens: int) -> tuple[list[int], np.ndarray, bool]:
    """Token ids and character offsets of ``text`` (no special tokens), truncated to ``max_tokens``."""
    enc = lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    truncated = len(ids) > max_tokens
    return ids[:max_tokens], offsets[:max_tokens], truncated


def stats_from_logits(logits: torch.Tensor, targets: torch.Tensor, chunk_size: int | None = None,
                      witness: bool = False) -> dict[str, np.ndarray]:
    """Per-position statistics of ``targets`` (n,) under next-token ``logits`` (n, V), in fp32.

    Computed ``chunk_size`` positions at a time (default: ``STATS_CHUNK_ELEMENTS // V``) so the fp32
    temporaries stay bounded for large vocabularies; each position is independent, so chunking changes nothing.
    """
    return _chunked(lambda a, b: _stats_block(logits[a:b], targets[a:b], witness=witness), int(logits.shape[0]),
                    chunk_size or _chunk_positions(int(logits.shape[-1])))


def _chunk_positions(vocab_size: int) -> int:
    return max(1, STATS_CHUNK_ELEMENTS // max(1, vocab_size))


def _chunked(block, n: int, step: int) -> dict[str, np.ndarray]:
    """Concatenate ``block(start, end)`` over [0, n) in steps of ``step`` (one call when n <= step)."""
    if n <= step:
        return block(0, n)
    parts = [block(a, min(a + step, n)) for a in range(0, n, step)]
    return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}


def split_head(lm: LanguageModel) -> tuple[torch.nn.Module, torch.nn.Module, float | None] | None:
    """(base model, output head, final soft-cap) when the LM's logits are the head of the base model's last
    hidden state (``SPLIT_HEAD_MODEL_TYPES``), else None: then the full model is run and its logits chunked."""
    model = lm.model
    if getattr(model.config, "model_type", None) not in SPLIT_HEAD_MODEL_TYPES:
        return None
    base, head = getattr(model, "base_model", None), model.get_output_embeddings()
    if base is None or base is model or head is None:
        return None
    return base, head, getattr(model.config, "final_logit_softcapping", None)


def stats_from_hidden(head: torch.nn.Module, softcap: float | None, hidden: torch.Tensor,
                       targets: torch.Tensor, *, ranks: bool = True, witness: bool = False) -> dict[str, np.ndarray]:
    """``stats_from_logits`` of ``head(hidden)`` (n, d), the head applied chunk by chunk.

    ``ranks=False`` skips the vocabulary-wide rank comparison (no ``rank`` key): the analytic discrepancy of the
    tuned fork (``detector.tuned_top``) needs only the log-prob, entropy and variance terms. ``witness=True`` adds
    the AdaDetectGPT witness moments (``witness_residual``, ``witness_cov``; ``detector.witness``).
    """
    def block(a: int, b: int) -> dict[str, np.ndarray]:
        logits = head(hidden[a:b])
        if softcap is not None:  # as the model's own forward does (Gemma 2/3)
            logits = torch.tanh(logits / softcap) * softcap
        return _stats_block(logits, targets[a:b], ranks=ranks, witness=witness)

    return _chunked(block, int(hidden.shape[0]), _chunk_positions(int(head.out_features)))  # also int8 Linear


def _stats_block(logits: torch.Tensor, targets: torch.Tensor, *, ranks: bool = True,
                 witness: bool = False) -> dict[str, np.ndarray]:
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    logp = logp_all.gather(-1, targets[:, None]).squeeze(-1)
    p = logp_all.exp()
    entropy = -(p * logp_all).sum(-1)
    # Var[log p] around its mean -entropy, centred first: E[x^2] - E[x]^2 cancels catastrophically in
    # fp32 when the entropy is high (~1e-4 absolute error); this form is as fast and ~100x more accurate.
    centred = logp_all + entropy[:, None]
    var_ref = torch.linalg.vecdot(p, centred.square_())
    out = {"logprob": logp.cpu().numpy(), "entropy": entropy.cpu().numpy(), "var_ref": var_ref.cpu().numpy()}
    if ranks:
        out["rank"] = ((logp_all > logp[:, None]).sum(-1) + 1).cpu().numpy()
    if witness:
        residual, cov = witness_moments(logp_all, targets, p=p)
        out["witness_residual"], out["witness_cov"] = residual.cpu().numpy(), cov.cpu().numpy()
    return out


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
                        pooled_layers: Sequence[int] = (), token_layers: Sequence[int] = (),
                        witness: bool = False) -> list[TokenStats]:
    """Token statistics for each text from one forward pass; ``hidden_layer`` also keeps that layer's input.

    Texts with no tokens get empty arrays. ``hidden_layer`` indexes ``hidden_states`` (0 = embeddings,
    i = input of block i), so ``num_layers - k`` is what a top-k classifier head starts from.
    ``pooled_layers`` (same indexing) also keeps the token-mean of those layers, for linear-probe heads;
    ``token_layers`` keeps their per-token states (the probe's per-token logits, for sentence scores).
    ``witness`` also keeps the AdaDetectGPT witness moments of each token (``detector.witness``).
    """
    encoded = [tokenize(lm, t, max_tokens) for t in texts]
    lengths = [len(ids) + 1 for ids, _, _ in encoded]  # +1 for the prefix token
    results: list[TokenStats | None] = [None] * len(texts)
    pad_id = lm.prefix_id
    split = split_head(lm)
    for batch in _batches(lengths, batch_size, batch_tokens):
        width = max(lengths[i] for i in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids = [lm.prefix_id] + encoded[i][0]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        # With a split head the model runs to its final hidden state only (no (B, T, V) logits); same hidden_states.
        out = (split[0] if split else lm.model)(
            input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device),
            output_hidden_states=hidden_layer is not None or bool(pooled_layers) or bool(token_layers),
            use_cache=False)
        for row, i in enumerate(batch):
            ids, offsets, truncated = encoded[i]
            n = len(ids)
            targets = input_ids[row, 1 : n + 1].to(lm.device)
            stats = stats_from_hidden(split[1], split[2], out.last_hidden_state[row, :n], targets, witness=witness) \
                if split else stats_from_logits(out.logits[row, :n], targets, witness=witness)
            hidden = None
            if hidden_layer is not None:
                hidden = out.hidden_states[hidden_layer][row, : n + 1].detach().to("cpu").clone()
            pooled = None
            if pooled_layers:
                pooled = torch.stack([out.hidden_states[j][row, 1: n + 1].float().mean(0) if n else
                                      out.hidden_states[j][row, 0].float() for j in pooled_layers]).cpu().numpy()
            states = None
            if token_layers:
                states = torch.stack([out.hidden_states[j][row, 1: n + 1].float() for j in token_layers]).cpu()
            results[i] = TokenStats(token_ids=np.asarray(ids, dtype=np.int64), offsets=offsets,
                                    logprob=stats["logprob"], rank=stats["rank"].astype(np.int64),
                                    entropy=stats["entropy"], var_ref=stats["var_ref"],
                                    truncated=truncated, hidden=hidden, pooled=pooled, layer_states=states,
                                    witness_residual=stats.get("witness_residual"),
                                    witness_cov=stats.get("witness_cov"))
        del out
    return results  # type: ignore[return-value]
