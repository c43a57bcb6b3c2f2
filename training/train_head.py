"""Fine-tune the classifier head on cached hidden states, with per-epoch checkpoints that resume.

The frozen lower blocks never run here: the scorer's LM pass cached the hidden state entering
block L-K (K = the largest head depth trained). A head of depth k <= K first runs the frozen
blocks L-K .. L-k-1 on the cache (no gradient), so one cache serves a k-ablation.
Runs unchanged on a GPU when one is present (``device``).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm
from transformers import PreTrainedModel

from detector.classifier import ClassifierHead


def _pad(hiddens: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(h.shape[0] for h in hiddens)
    x = torch.zeros(len(hiddens), width, hiddens[0].shape[1])
    mask = torch.zeros(len(hiddens), width, dtype=torch.long)
    for i, h in enumerate(hiddens):
        x[i, : h.shape[0]] = h.float()
        mask[i, : h.shape[0]] = 1
    return x, mask


def _length_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (little padding, still random order)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def frozen_bridge(backbone: PreTrainedModel, k: int, cached_k: int, device: str | torch.device = "cpu"):
    """The frozen backbone blocks between the cached state (entering block L - cached_k) and a depth-k head:
    ``(x, mask) -> state entering block L - k``, or None when k == cached_k. Training, the report and the
    sentence model must all put a head of depth k < cached_k behind it, or it reads the wrong layer."""
    if cached_k <= k:
        return None
    body = ClassifierHead.from_backbone(backbone, cached_k).to(torch.device(device)).eval().body

    @torch.no_grad()
    def bridge(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return body(inputs_embeds=x, attention_mask=mask, output_hidden_states=True).hidden_states[cached_k - k]
    return bridge


class HeadTrainer:
    """Trains ClassifierHead(k) from hiddens cached at depth ``cached_k`` (>= k)."""

    def __init__(self, backbone: PreTrainedModel, k: int, cached_k: int, *, lr: float = 5e-5, head_lr: float = 1e-3,
                 epochs: int = 3, batch_size: int = 8, weight_decay: float = 0.01, seed: int = 0,
                 device: str | torch.device = "cpu") -> None:
        self.k, self.cached_k, self.lr, self.head_lr = k, cached_k, lr, head_lr
        self.epochs, self.batch_size, self.weight_decay, self.seed = epochs, batch_size, weight_decay, seed
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.head_ = ClassifierHead.from_backbone(backbone, k).to(self.device)
        self._bridge = frozen_bridge(backbone, k, cached_k, self.device)

    def fit(self, hiddens: list[torch.Tensor], y: list[int], checkpoint: Path | None = None) -> HeadTrainer:
        """Train; resumes from ``checkpoint`` (saved after every epoch) when it exists."""
        params_body = [p for n, p in self.head_.named_parameters() if p.requires_grad and not n.startswith("score")]
        opt = torch.optim.AdamW([{"params": params_body, "lr": self.lr},
                                 {"params": self.head_.score.parameters(), "lr": self.head_lr}],
                                weight_decay=self.weight_decay)
        steps_per_epoch = math.ceil(len(hiddens) / self.batch_size)
        total = steps_per_epoch * self.epochs
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / max(1, total // 10)) * max(0.0, (total - s) / total))
        start_epoch, self.history_ = 0, []
        if checkpoint is not None and checkpoint.exists():
            state = torch.load(checkpoint, weights_only=False)
            self.head_.load_state_dict(state["head"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            start_epoch, self.history_ = state["epoch"], state["history"]
        loss_fn = nn.BCEWithLogitsLoss()
        lengths = [h.shape[0] for h in hiddens]
        for epoch in range(start_epoch, self.epochs):
            self.head_.train()
            rng = random.Random(self.seed * 1000 + epoch)
            total_loss, seen = 0.0, 0
            bar = tqdm(_length_batches(lengths, self.batch_size, rng), desc=f"head k={self.k} epoch {epoch + 1}",
                       leave=False)
            for batch in bar:
                x, mask = _pad([hiddens[i] for i in batch])
                x, mask = x.to(self.device), mask.to(self.device)
                target = torch.tensor([float(y[i]) for i in batch], device=self.device)
                logits, _ = self.head_(x if self._bridge is None else self._bridge(x, mask), mask)
                loss = loss_fn(logits, target)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.head_.parameters(), 1.0)
                opt.step()
                sched.step()
                total_loss += loss.item() * len(batch)
                seen += len(batch)
                bar.set_postfix(loss=f"{total_loss / seen:.4f}")
            self.history_.append({"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1)})
            if checkpoint is not None:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                tmp = checkpoint.with_suffix(".tmp")
                torch.save({"head": self.head_.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "epoch": epoch + 1, "history": self.history_}, tmp)
                tmp.replace(checkpoint)
        self.head_.eval()
        return self

    def predict(self, hiddens: list[torch.Tensor], batch_size: int = 16) -> tuple[list[float], list[torch.Tensor]]:
        """Document logits and per-token logits (start token dropped) for each cached hidden state."""
        self.head_.eval()
        return predict_head(self.head_, hiddens, self.device, batch_size=batch_size, bridge=self._bridge)


@torch.no_grad()
def predict_head(head: ClassifierHead, hiddens: list[torch.Tensor], device: torch.device | str = "cpu", *,
                 batch_size: int = 16, bridge=None) -> tuple[list[float], list[torch.Tensor]]:
    """Run a head over cached hidden states in length-sorted batches: (doc logits, token logits per text)."""
    docs: list[float] = [0.0] * len(hiddens)
    tokens: list[torch.Tensor] = [torch.zeros(0)] * len(hiddens)
    order = sorted(range(len(hiddens)), key=lambda i: hiddens[i].shape[0])
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        x, mask = _pad([hiddens[i] for i in batch])
        x, mask = x.to(device), mask.to(device)
        if bridge is not None:
            x = bridge(x, mask)
        doc, tok = head(x, mask)
        for row, i in enumerate(batch):
            docs[i] = float(doc[row])
            tokens[i] = tok[row, 1: hiddens[i].shape[0]].float().cpu()
    return docs, tokens
