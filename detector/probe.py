"""A linear probe on the scorer's own hidden states: the cheapest trained head there is.

Why: the LM pass already computes every layer's hidden state. Averaged over the text's tokens at a few
depths, they hold what a fine-tuned head would learn from, and a logistic regression on them trains in
seconds, so it can be refit for every leave-one-source-out fold (Gurioli et al., 2024, and the
"probing" literature: linear readouts of frozen LM states detect machine text well and transfer better
than fine-tuned blocks, which overfit the training collections' style).
Because the probe is linear, its logit of the mean state equals the mean of its per-token logits, so
sentence scores for highlighting come at no extra cost.

scikit-learn conventions: ``fit`` returns self, learned attributes end in ``_``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

DEFAULT_C = 0.05  # strong L2: thousands of dimensions, thousands of texts


def balanced_weights(groups: Sequence[str], y: np.ndarray) -> np.ndarray:
    """Sample weights giving every (group, label) cell the same total weight (mean weight 1)."""
    keys = np.char.add(np.asarray(groups).astype(str), np.asarray(y).astype(str))
    uniq, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return (len(keys) / (len(uniq) * counts))[inv]


class LinearProbe:
    """Standardise the concatenated token-mean hidden states of ``layers``, then logistic regression."""

    def __init__(self, layers: Sequence[int], C: float = DEFAULT_C, balance_groups: bool = True) -> None:
        self.layers = [int(x) for x in layers]
        self.C = C
        self.balance_groups = balance_groups

    def fit(self, pooled: np.ndarray, y: np.ndarray, groups: Sequence[str] | None = None) -> LinearProbe:
        """``pooled``: (n, len(layers), d) token-mean states; ``groups`` (e.g. source) weighted equally."""
        X = np.asarray(pooled, dtype=np.float64).reshape(len(pooled), -1)
        self.mean_ = X.mean(0)
        self.scale_ = X.std(0) + 1e-6
        weights = None
        if groups is not None and self.balance_groups:
            weights = balanced_weights(groups, y)
        lr = LogisticRegression(C=self.C, max_iter=3000).fit((X - self.mean_) / self.scale_, y, sample_weight=weights)
        self.coef_ = lr.coef_[0]
        self.intercept_ = float(lr.intercept_[0])
        return self

    def decision_function(self, pooled: np.ndarray) -> np.ndarray:
        X = np.asarray(pooled, dtype=np.float64).reshape(len(pooled), -1)
        return ((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def token_logits(self, states: torch.Tensor) -> np.ndarray:
        """Per-token logits from (len(layers), n, d) token states; their mean is the document logit."""
        w = torch.as_tensor(self.coef_ / self.scale_, dtype=torch.float32).reshape(len(self.layers), -1)
        b = self.intercept_ - float(np.sum(self.coef_ * self.mean_ / self.scale_))
        return (torch.einsum("lnd,ld->n", states.float(), w) + b).numpy()

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {"probe.mean": torch.as_tensor(self.mean_, dtype=torch.float32),
                "probe.scale": torch.as_tensor(self.scale_, dtype=torch.float32),
                "probe.coef": torch.as_tensor(self.coef_, dtype=torch.float32),
                "probe.intercept": torch.tensor([self.intercept_], dtype=torch.float32)}

    @classmethod
    def from_tensors(cls, layers: Sequence[int], tensors: dict[str, torch.Tensor], C: float = DEFAULT_C) -> LinearProbe:
        probe = cls(layers, C)
        probe.mean_ = tensors["probe.mean"].double().numpy()
        probe.scale_ = tensors["probe.scale"].double().numpy()
        probe.coef_ = tensors["probe.coef"].double().numpy()
        probe.intercept_ = float(tensors["probe.intercept"][0])
        return probe
