"""The linear probes on the scorer's hidden states: one for every source, or one per source behind a router."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from detector.probe import LinearProbe, RoutedProbe

LAYERS = (1, 2)
D = 6  # hidden size per layer


def two_sources(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token-mean states (n, 2 layers, D) of two sources that sit apart (dimension 0) and whose AI texts move
    along opposite directions (dimension 1 for one, dimension 2 for the other, with opposite signs)."""
    rng = np.random.default_rng(seed)
    src = np.repeat(["a", "b"], n // 2)
    y = np.tile([0, 1], n // 2)
    X = rng.normal(size=(n, len(LAYERS), D))
    X[:, :, 0] += np.where(src == "a", -3.0, 3.0)[:, None]
    X[:, :, 1] += np.where(src == "a", 1.5, -1.5)[:, None] * y[:, None]
    X[:, :, 2] += np.where(src == "a", -1.5, 1.5)[:, None] * y[:, None]
    return X, y, src


def test_routed_probe_learns_directions_a_single_probe_averages_away() -> None:
    X, y, src = two_sources()
    Xt, yt, srct = two_sources(seed=1)
    single = LinearProbe(LAYERS, C=1.0).fit(X, y, src)
    routed = RoutedProbe(LAYERS, C=1.0, router_C=1.0).fit(X, y, src)
    assert roc_auc_score(yt, single.decision_function(Xt)) < 0.7
    assert roc_auc_score(yt, routed.decision_function(Xt)) > 0.9
    assert routed.experts_ == ["a", "b"]
    r = routed.route(Xt)
    assert np.allclose(r.sum(1), 1.0) and (r[srct == "a", 0] > 0.9).mean() > 0.95


def test_binary_router_matches_logistic_regression() -> None:
    X, y, src = two_sources()
    routed = RoutedProbe(LAYERS, C=1.0, router_C=0.1).fit(X, y, src)
    Xs = (X.reshape(len(X), -1) - routed.mean_) / routed.scale_
    ref = LogisticRegression(C=0.1, max_iter=3000).fit(Xs, src).predict_proba(Xs)
    assert np.allclose(routed.route(X), ref, atol=1e-6)


def test_token_logits_average_to_the_document_logit_and_survive_saving() -> None:
    X, y, src = two_sources()
    routed = RoutedProbe(LAYERS, C=1.0).fit(X, y, src)
    states = torch.randn(len(LAYERS), 9, D) + 2.0  # one text: (layers, tokens, d)
    doc = routed.decision_function(states.mean(1).numpy()[None])[0]
    assert np.mean(routed.token_logits(states)) == pytest.approx(doc, abs=1e-4)
    # a bf16 backbone hands over bf16 states (forced here, whatever the CPU): the head still runs in float64
    bf16 = routed.token_logits(states.to(torch.bfloat16))
    assert bf16.dtype == np.float32 and np.allclose(bf16, routed.token_logits(states), atol=0.1)
    loaded = RoutedProbe.from_tensors(LAYERS, routed.to_tensors(), routed.experts_)
    assert np.allclose(loaded.decision_function(X), routed.decision_function(X), atol=1e-3)
    with pytest.raises(ValueError):
        RoutedProbe.from_tensors(LAYERS, routed.to_tensors(), ["a"])


def test_a_source_with_one_label_trains_no_expert() -> None:
    X, y, src = two_sources()
    keep = ~((src == "b") & (y == 1))  # source b: humans only
    routed = RoutedProbe(LAYERS, C=1.0).fit(X[keep], y[keep], src[keep])
    assert routed.experts_ == ["a"] and np.allclose(routed.route(X), 1.0)
    plain = LogisticRegression(C=1.0, max_iter=3000)
    a = src == "a"
    Xa = X[a].reshape(a.sum(), -1)
    plain.fit((Xa - routed.mean_) / routed.scale_, y[a])
    assert np.allclose(routed.decision_function(X[a]), plain.decision_function((Xa - routed.mean_) / routed.scale_))
    with pytest.raises(ValueError):
        RoutedProbe(LAYERS).fit(X[y == 0], y[y == 0], src[y == 0])
