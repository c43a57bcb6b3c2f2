"""Fine-tuned top-k blocks + linear head, run on the hidden state the scorer's LM pass already made.

Why: a full sequence classifier would run the backbone a second time. Instead the frozen lower
blocks are shared with the zero-shot scorer; only a fine-tuned copy of the top ``k`` blocks, the
final norm and a linear score run on top of the hidden state entering block ``L - k``. Token
logits are mean-pooled over the text (the start token excluded), so the mean of the token logits
inside a sentence is that sentence's own classifier score, for highlighting at no extra cost.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel


def _layer_list(module: nn.Module, n_layers: int) -> tuple[str, nn.ModuleList]:
    """The ModuleList holding the transformer blocks (``layers`` in Llama/Gemma, ``h`` in GPT-2)."""
    for name, child in module.named_modules():
        if isinstance(child, nn.ModuleList) and len(child) == n_layers:
            return name, child
    raise ValueError(f"no list of {n_layers} blocks found in {type(module).__name__}")


class ClassifierHead(nn.Module):
    """Top-k transformer blocks of a backbone + final norm + linear score (one logit per token)."""

    def __init__(self, config: PretrainedConfig, k: int) -> None:
        super().__init__()
        self.k = k
        cfg = copy.deepcopy(config)
        cfg.num_hidden_layers = k
        if hasattr(cfg, "layer_types") and cfg.layer_types is not None:  # Gemma 3: sliding/full pattern
            cfg.layer_types = list(config.layer_types)[config.num_hidden_layers - k:]
        # Always fp32, whatever the backbone runs in: a bf16 config would otherwise give bf16 blocks next to an
        # fp32 score layer ("mixed dtype" on bf16 CPUs and GPUs). The head is 2 blocks: fp32 costs little.
        cfg.dtype = torch.float32
        self.body = AutoModel.from_config(cfg, dtype=torch.float32)
        # Inputs are hidden states, not token ids: shrink the unused embedding table to one row.
        self.body.set_input_embeddings(nn.Embedding(1, cfg.hidden_size))
        wpe = getattr(self.body, "wpe", None)
        if wpe is not None:  # GPT-2 adds learned positions to inputs_embeds; the hidden state has them already
            nn.init.zeros_(wpe.weight)
            wpe.weight.requires_grad_(False)
        self.score = nn.Linear(cfg.hidden_size, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    @classmethod
    def from_backbone(cls, backbone: PreTrainedModel, k: int) -> ClassifierHead:
        """A head whose blocks and final norm start as copies of the backbone's top ``k``."""
        head = cls(backbone.config, k)
        n_layers = backbone.config.num_hidden_layers
        base = backbone.base_model
        base_name, _ = _layer_list(base, n_layers)
        body_name = base_name  # same module class, so same attribute name
        state = {}
        for key, value in base.state_dict().items():
            if key.startswith(base_name + "."):
                idx, rest = key[len(base_name) + 1:].split(".", 1)
                j = int(idx) - (n_layers - k)
                if j >= 0:
                    state[f"{body_name}.{j}.{rest}"] = value.detach().clone().float()
            elif not _is_embedding_key(key):
                state[key] = value.detach().clone().float()
        missing, _unexpected = head.body.load_state_dict(state, strict=False)
        missing = [m for m in missing if not _is_embedding_key(m)]
        if missing:
            raise ValueError(f"head blocks not initialised from the backbone: {missing[:5]}")
        return head

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a bundle stores: blocks, final norm, score (no embeddings)."""
        return {k: v for k, v in self.state_dict().items() if not _is_embedding_key(k.removeprefix("body."))}

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(doc_logit (B,), token_logits (B, T)) for hidden (B, T, d) whose row 0 is the start token."""
        out = self.body(inputs_embeds=hidden.to(self.score.weight.dtype), attention_mask=mask,
                        use_cache=False).last_hidden_state
        token_logits = self.score(out).squeeze(-1)
        weights = mask.to(token_logits.dtype).clone()
        weights[:, 0] = 0.0  # the start token is context, not text
        doc = (token_logits * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)
        return doc, token_logits


def _is_embedding_key(key: str) -> bool:
    return key.startswith(("embed_tokens.", "wte.", "wpe.", "embed_positions."))
