"""The fork: the backbone's top k blocks with discrepancy-trained weights, run on the hidden state the LM pass made.

Why: a scorer tuned with Direct Discrepancy Learning (``training/ddl.py``; DetectAnyLLM, Fu et al., 2025) is no
longer a language model, so today's zero-shot statistics must still come from the untuned weights. When only
the top k blocks were tuned (LoRA on their attention projections), the lower blocks are shared: the one LM
pass keeps the hidden state entering block ``L - k``, and this module runs a tuned copy of the top k blocks,
the final norm and the backbone's own (frozen, tied) LM head on it. Its token statistics give the tuned
analytic discrepancy (``detector.features.fast_detectgpt``), at the cost of k blocks and one more LM head,
instead of a second full pass.

The tuned discrepancy is read over the first ``window`` tokens only: the window the adapter was trained and judged
on (DDL trains on texts cut to 128 tokens, ``training/ddl.py``), and a fork over it costs a fixed number of
tokens however long the text is.

The tuned weights are stored as LoRA factors (``A``, ``B`` and the scale ``alpha / r`` per wrapped Linear) and
merged into the copied blocks at load: ``W' = W + scale * B @ A``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from detector.classifier import ClassifierHead
from detector.features import fast_detectgpt
from detector.lm import LanguageModel
from detector.token_stats import split_head, stats_from_hidden


class TunedTop(nn.Module):
    """Top-k blocks + final norm whose attention projections carry merged LoRA deltas.

    It runs at the backbone's precision (bf16 where the CPU is fast at it): the deltas are merged in fp32 first,
    and only inference runs on the rounded weights (training keeps fp32, ``training/ddl.py``).
    """

    def __init__(self, backbone: PreTrainedModel, k: int, window: int | None = None) -> None:
        super().__init__()
        self.k = k
        self.window = window  # score the first `window` tokens (None: all)
        self.dtype = next(backbone.parameters()).dtype
        self.body = ClassifierHead.from_backbone(backbone, k).body  # the score layer of a head is not needed
        self.body.requires_grad_(False)
        self.eval()  # no dropout at scoring time (GPT-2 configs carry 0.1)
        self.body.to(self.dtype)
        self.n_layers = int(backbone.config.num_hidden_layers)
        self.adapter_digest = ""  # set by merge_lora

    def merge_lora(self, factors: dict[str, torch.Tensor], scale: float) -> TunedTop:
        """Add ``scale * B @ A`` to each wrapped Linear. ``factors`` maps ``<module path in the backbone>.A`` /
        ``.B`` (the path names the backbone's own block index, e.g. ``model.layers.27.self_attn.q_proj``)."""
        digest = hashlib.sha256(repr(float(scale)).encode())
        for key in sorted(factors):
            digest.update(key.encode())
            digest.update(factors[key].detach().float().cpu().numpy().tobytes())
        if self.window is not None:
            digest.update(f"window={int(self.window)}".encode())
        self.adapter_digest = digest.hexdigest()[:16]  # the weights merged and the window read (caches key on it)
        modules = dict(self.body.named_modules())
        first = self.n_layers - self.k
        for name in sorted({key.rsplit(".", 1)[0] for key in factors}):
            prefix, idx, rest = _split_block_path(name)
            if idx < first:
                raise ValueError(f"{name}: LoRA below the top {self.k} blocks cannot be forked")
            target = modules.get(f"{prefix}.{idx - first}.{rest}")
            if target is None:
                raise ValueError(f"{name}: no such module in the top {self.k} blocks")
            delta = scale * (factors[name + ".B"].float() @ factors[name + ".A"].float())
            weight = target.weight
            with torch.no_grad():  # GPT-2's Conv1D stores (in, out): the transposed delta
                merged = weight.float() + (delta.T if weight.shape != delta.shape else delta)
                weight.copy_(merged.to(weight.dtype))
        return self

    @torch.inference_mode()
    def hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final hidden states (n, d) of one text from its hidden state entering block L-k (n, d), prefix row
        first."""
        h = hidden.to(self.dtype)[None]
        mask = torch.ones(h.shape[:2], dtype=torch.long, device=h.device)
        return self.body(inputs_embeds=h, attention_mask=mask, use_cache=False).last_hidden_state[0]


def tuned_discrepancy(top: TunedTop, lm: LanguageModel, hidden: torch.Tensor,
                      token_ids: np.ndarray) -> float:
    """The tuned analytic discrepancy of one text: ``hidden`` enters block L-k (prefix row first), ``token_ids``
    are the scored tokens (one fewer row than ``hidden``). Only the first ``top.window`` tokens are read."""
    if top.window is not None:
        token_ids = token_ids[: top.window]
        hidden = hidden[: len(token_ids)]  # row i predicts token i
    n = len(token_ids)
    if n == 0:
        return 0.0
    split = split_head(lm)
    if split is None:
        raise ValueError(f"model type {lm.model.config.model_type!r} has no separable LM head to fork")
    _, head, softcap = split
    out = top.hidden(hidden)[:n].to(head.weight.dtype)
    targets = torch.as_tensor(np.asarray(token_ids), dtype=torch.long, device=out.device)
    with torch.inference_mode():  # only the discrepancy's terms: no vocabulary-wide ranks
        st = stats_from_hidden(head, softcap, out, targets, ranks=False)
    return fast_detectgpt(st["logprob"], st["entropy"], st["var_ref"])


def _split_block_path(name: str) -> tuple[str, int, str]:
    """``model.layers.27.self_attn.q_proj`` -> (``layers``, 27, ``self_attn.q_proj``), relative to the body."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return parts[i - 1], int(part), ".".join(parts[i + 1:])
    raise ValueError(f"{name}: not inside a block")
