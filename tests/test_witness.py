"""AdaDetectGPT's witness statistic: reduces to Fast-DetectGPT for w(z) = z, and its closed-form fit separates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from detector.features import fast_detectgpt
from detector.token_stats import stats_from_logits
from detector.witness import WitnessFit, identity_beta, unpack_cov, witness_moments, witness_statistic


def _moments(logits: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    residual, cov = witness_moments(torch.log_softmax(logits, -1), targets)
    return residual.numpy(), cov.numpy()


def test_identity_witness_is_fast_detectgpt() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 40, generator=g) * 2
    targets = torch.randint(0, 40, (50,), generator=g)
    residual, cov = _moments(logits, targets)
    st = stats_from_logits(logits, targets)
    expected = fast_detectgpt(st["logprob"], st["entropy"], st["var_ref"])
    assert witness_statistic(residual, cov, identity_beta()) == pytest.approx(expected, rel=1e-3)  # fp32 moments


def test_covariance_is_symmetric_and_positive() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(10, 64, generator=g) * 4
    _, cov = _moments(logits, torch.zeros(10, dtype=torch.long))
    full = unpack_cov(cov)
    assert np.allclose(full, np.swapaxes(full, -1, -2))
    assert (np.linalg.eigvalsh(full) > -1e-6).all()


def test_fit_separates_sampled_from_off_model_text() -> None:
    """AI-like texts sample their tokens from the model; human-like ones sometimes pick a rare token."""
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(2)
    residuals, covs, y = [], [], []
    for i in range(80):
        logits = torch.randn(60, 50, generator=g) * 3
        probs = torch.softmax(logits, -1)
        targets = torch.multinomial(probs, 1, generator=g)[:, 0]
        if i % 2 == 0:  # human: a quarter of the tokens from the model's least likely half
            rare = torch.argsort(probs, -1)[:, :25]
            swap = torch.as_tensor(rng.random(60) < 0.25)
            targets = torch.where(swap, rare[torch.arange(60), torch.as_tensor(rng.integers(0, 25, 60))], targets)
        r, c = _moments(logits, targets)
        residuals.append(r)
        covs.append(c)
        y.append(i % 2 == 1)
    y = np.asarray(y, dtype=int)
    fit = WitnessFit().fit(residuals[:40], covs[:40], y[:40])
    assert fit is not None and np.linalg.norm(fit.beta_) == pytest.approx(1.0)
    held = fit.decision_function(residuals[40:], covs[40:])
    assert roc_auc_score(y[40:], held) > 0.9
