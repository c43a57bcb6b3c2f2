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


ROUTER_C = 0.001  # the source router: strong L2 too; it reads the same thousands of dimensions


class RoutedProbe:
    """One linear probe per training source (an "expert"), mixed by a source router: the document logit is
    ``sum_s r_s(x) * z_s(x)``, where ``r(x)`` is a multinomial logistic regression's guess of which training
    source the text resembles and ``z_s`` the expert probe fit on that source alone.

    Why: one probe over every source learns a compromise direction; a probe per source fits its own source
    better, and routed it also transferred better to held-out sources (docs/decisions.md). A mixture of experts
    with a learned gate (Jacobs et al., 1991), with the sources as the
    experts' domains; the gate is fit separately, not jointly.

    The router reads the token-mean state, so per-token logits mix the experts with the document's weights and
    their mean is still the document logit (sentence scores come free, as for ``LinearProbe``).
    """

    def __init__(self, layers: Sequence[int], C: float = DEFAULT_C, router_C: float = ROUTER_C) -> None:
        self.layers = [int(x) for x in layers]
        self.C = C
        self.router_C = router_C

    def fit(self, pooled: np.ndarray, y: np.ndarray, groups: Sequence[str] | None = None) -> RoutedProbe:
        """``groups``: each row's source. A source with one label only cannot train an expert and is left out
        (its rows too); with one usable source the router is constant and the probe is that source's."""
        X = np.asarray(pooled, dtype=np.float64).reshape(len(pooled), -1)
        y = np.asarray(y)
        g = np.asarray(groups if groups is not None else ["all"] * len(y)).astype(str)
        usable = [s for s in np.unique(g) if len(np.unique(y[g == s])) == 2]
        if not usable:
            raise ValueError("RoutedProbe needs a source with both labels")
        keep = np.isin(g, usable)
        X, y, g = X[keep], y[keep], g[keep]
        self.mean_ = X.mean(0)
        self.scale_ = X.std(0) + 1e-6
        Xs = (X - self.mean_) / self.scale_
        self.experts_ = list(usable)
        coefs, intercepts = [], []
        for s in self.experts_:
            lr = LogisticRegression(C=self.C, max_iter=3000).fit(Xs[g == s], y[g == s])
            coefs.append(lr.coef_[0])
            intercepts.append(float(lr.intercept_[0]))
        self.expert_coef_, self.expert_intercept_ = np.array(coefs), np.array(intercepts)
        if len(self.experts_) == 1:
            self.router_coef_, self.router_intercept_ = np.zeros((1, X.shape[1])), np.zeros(1)
        else:
            router = LogisticRegression(C=self.router_C, max_iter=3000).fit(Xs, g)
            coef, icpt = router.coef_, router.intercept_
            if len(router.classes_) == 2:  # scikit-learn keeps one row for two classes: split it into a softmax pair
                coef, icpt = np.vstack([-coef[0], coef[0]]) / 2, np.array([-icpt[0], icpt[0]]) / 2
            order = [list(router.classes_).index(s) for s in self.experts_]
            self.router_coef_, self.router_intercept_ = coef[order], icpt[order]
        return self

    def _standardised(self, pooled: np.ndarray) -> np.ndarray:
        X = np.asarray(pooled, dtype=np.float64).reshape(len(pooled), -1)
        return (X - self.mean_) / self.scale_

    def route(self, pooled: np.ndarray) -> np.ndarray:
        """(n, n_experts): how much each expert speaks for each text (rows sum to 1)."""
        a = self._standardised(pooled) @ self.router_coef_.T + self.router_intercept_
        a = np.exp(a - a.max(1, keepdims=True))
        return a / a.sum(1, keepdims=True)

    def expert_logits(self, pooled: np.ndarray) -> np.ndarray:
        """(n, n_experts): each expert's own logit."""
        return self._standardised(pooled) @ self.expert_coef_.T + self.expert_intercept_

    def decision_function(self, pooled: np.ndarray) -> np.ndarray:
        return (self.route(pooled) * self.expert_logits(pooled)).sum(1)

    def token_logits(self, states: torch.Tensor) -> np.ndarray:
        """Per-token logits from (len(layers), n, d) token states, experts weighted by the document's route."""
        s = states.double().numpy()
        r = self.route(s.mean(1)[None])[0]
        w = (r @ self.expert_coef_) / self.scale_
        b = float(r @ self.expert_intercept_) - float(np.sum(w * self.mean_))
        return (np.einsum("lnd,ld->n", s, w.reshape(len(self.layers), -1)) + b).astype(np.float32)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        f32 = torch.float32
        return {"probe.mean": torch.as_tensor(self.mean_, dtype=f32),
                "probe.scale": torch.as_tensor(self.scale_, dtype=f32),
                "router.coef": torch.as_tensor(self.router_coef_, dtype=f32),
                "router.intercept": torch.as_tensor(self.router_intercept_, dtype=f32),
                "experts.coef": torch.as_tensor(self.expert_coef_, dtype=f32),
                "experts.intercept": torch.as_tensor(self.expert_intercept_, dtype=f32)}

    @classmethod
    def from_tensors(cls, layers: Sequence[int], tensors: dict[str, torch.Tensor], experts: Sequence[str],
                     C: float = DEFAULT_C) -> RoutedProbe:
        probe = cls(layers, C)
        probe.mean_ = tensors["probe.mean"].double().numpy()
        probe.scale_ = tensors["probe.scale"].double().numpy()
        probe.router_coef_ = tensors["router.coef"].double().numpy()
        probe.router_intercept_ = tensors["router.intercept"].double().numpy()
        probe.expert_coef_ = tensors["experts.coef"].double().numpy()
        probe.expert_intercept_ = tensors["experts.intercept"].double().numpy()
        probe.experts_ = list(experts)
        if len(probe.experts_) != len(probe.expert_intercept_):
            raise ValueError(f"{len(probe.expert_intercept_)} experts stored, {len(probe.experts_)} named")
        return probe
