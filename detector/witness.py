"""AdaDetectGPT's learned witness: Fast-DetectGPT's analytic statistic with ``log p`` replaced by ``w(log p)``.

AdaDetectGPT (Zhou et al., NeurIPS 2025, repo ``Mamba413/AdaDetectGPT``) scores a text by

    T_w = sum_t [w(log p_t(x_t)) - E_{y~p_t} w(log p_t(y))] / sqrt(sum_t Var_{y~p_t} w(log p_t(y)))

with ``w(z) = sum_k beta_k B_k(z)`` a spline over ``[LOW, 0]`` whose coefficients have a closed form from one
pass over labelled texts. ``w(z) = z`` gives Fast-DetectGPT back (Bao et al., 2024), so the family contains it.

Here the basis is piecewise linear (degree-1 B-splines, "hat" functions on uniform knots; the paper uses
degree 2): each log-prob touches two bases, so the vocabulary-wide expectations are a few scatter-adds in the
same pass that computes the entropy. Per token the pass keeps the witness residual ``B(x_t) - E[B]`` (K
values) and the covariance of ``B`` under ``p_t`` (tridiagonal: K + K-1 values). A text's statistic for any
``beta`` is then a closed form of their sums, so ``beta`` can be refit without a new pass.

The closed-form fit is Fisher's discriminant on per-token averages: ``beta = (S + ridge)^-1 (m_ai - m_human)``,
where ``m`` are class means of the summed residual per token and ``S`` the mean per-token covariance under the
model, which is the statistic's own normaliser. scikit-learn conventions: ``fit`` returns self, learned
attributes end in ``_``.
"""

from __future__ import annotations

import numpy as np
import torch

N_BASES = 8
LOW = -32.0  # log-probs below this are clamped onto the first knot (AdaDetectGPT's range)


def _hat_weights(logp: torch.Tensor, n_bases: int = N_BASES) -> tuple[torch.Tensor, torch.Tensor]:
    """Left knot index j (int64) and the weight of knot j+1 (``frac``) for each log-prob: B_j = 1-frac, B_j+1 = frac."""
    u = (logp.float().clamp(LOW, 0.0) - LOW) * ((n_bases - 1) / -LOW)
    j = u.floor().clamp(max=n_bases - 2)
    return j.long(), u - j


def witness_moments(logp_all: torch.Tensor, targets: torch.Tensor, n_bases: int = N_BASES,
                    p: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position: the residual ``B(x_t) - E_p[B]`` (n, K) and Cov_p[B] packed as (n, 2K-1): K diagonal
    entries, then the K-1 entries above the diagonal (the only non-zero ones for hat functions).

    ``logp_all`` (n, V) are log-softmaxed next-token scores, ``targets`` (n,) the observed tokens; ``p``: their
    ``exp`` when the caller has it already.
    """
    n = logp_all.shape[0]
    p = logp_all.exp() if p is None else p
    j, frac = _hat_weights(logp_all, n_bases)
    first = torch.zeros(n, n_bases, dtype=p.dtype, device=p.device)
    first.scatter_add_(1, j, p * (1 - frac))
    first.scatter_add_(1, j + 1, p * frac)
    diag = torch.zeros_like(first)
    diag.scatter_add_(1, j, p * (1 - frac).square())
    diag.scatter_add_(1, j + 1, p * frac.square())
    off = torch.zeros(n, n_bases, dtype=p.dtype, device=p.device)
    off.scatter_add_(1, j, p * frac * (1 - frac))
    off = off[:, :-1]
    cov_diag = diag - first.square()
    cov_off = off - first[:, :-1] * first[:, 1:]
    tj, tfrac = _hat_weights(logp_all.gather(-1, targets[:, None]), n_bases)
    observed = torch.zeros_like(first)
    observed.scatter_add_(1, tj, 1 - tfrac)
    observed.scatter_add_(1, tj + 1, tfrac)
    return observed - first, torch.cat([cov_diag, cov_off], dim=1)


def unpack_cov(packed: np.ndarray) -> np.ndarray:
    """(..., 2K-1) packed tridiagonal covariances -> (..., K, K) symmetric matrices."""
    k = (packed.shape[-1] + 1) // 2
    out = np.zeros((*packed.shape[:-1], k, k), dtype=np.float64)
    idx = np.arange(k)
    out[..., idx, idx] = packed[..., :k]
    out[..., idx[:-1], idx[1:]] = packed[..., k:]
    out[..., idx[1:], idx[:-1]] = packed[..., k:]
    return out


def witness_statistic(residual: np.ndarray, cov: np.ndarray, beta: np.ndarray) -> float:
    """T_w of one text from its per-token ``residual`` (n, K) and packed ``cov`` (n, 2K-1); 0 for no tokens."""
    if len(residual) == 0:
        return 0.0
    d = np.asarray(residual, dtype=np.float64).sum(0)
    s = unpack_cov(np.asarray(cov, dtype=np.float64).sum(0))
    var = float(beta @ s @ beta)
    return float(beta @ d / np.sqrt(var)) if var > 0 else 0.0


def identity_beta(n_bases: int = N_BASES) -> np.ndarray:
    """Coefficients of ``w(z) = z`` on the hat basis (its knots' values): T_w is then Fast-DetectGPT's statistic."""
    return np.linspace(LOW, 0.0, n_bases)


class WitnessFit:
    """Closed-form witness coefficients from labelled texts' per-token moments (see the module docstring)."""

    def __init__(self, ridge: float = 1e-3) -> None:
        self.ridge = ridge

    def fit(self, residuals: list[np.ndarray], covs: list[np.ndarray], y: np.ndarray) -> WitnessFit:
        """``residuals[i]`` (n_i, K), ``covs[i]`` (n_i, 2K-1) of text i; ``y`` 1 for AI text."""
        y = np.asarray(y)
        keep = [i for i, r in enumerate(residuals) if len(r)]
        m = np.array([np.asarray(residuals[i], np.float64).mean(0) for i in keep])
        s = np.array([unpack_cov(np.asarray(covs[i], np.float64).mean(0)) for i in keep])
        yk = y[keep]
        diff = m[yk == 1].mean(0) - m[yk == 0].mean(0)
        S = s.mean(0)
        S = S + self.ridge * np.trace(S) / len(S) * np.eye(len(S))
        beta = np.linalg.solve(S, diff)
        self.beta_ = beta / np.linalg.norm(beta)  # T_w does not depend on beta's scale
        return self

    def decision_function(self, residuals: list[np.ndarray], covs: list[np.ndarray]) -> np.ndarray:
        """T_w of each text (higher = more machine-like, as Fast-DetectGPT)."""
        return np.array([witness_statistic(r, c, self.beta_) for r, c in zip(residuals, covs)])
