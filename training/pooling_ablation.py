"""Does the head pool better than a token mean? An ablation on a finished training run's cached LM pass.

    python -m training.pooling_ablation --name gemma3-zh [--out reports/gemma3-zh/pooling_ablation.json]

Issue 9 asks for learned token-attention pooling over the head's token states in place of the mean (the PAWN
idea). This compares, on the run's own train/test split and from the hidden state the pass cached per token
(block ``L - cached_k``):

* ``mean``: a logistic regression on the token mean (what the shipped probe does, at that one depth);
* ``mean+std`` and ``mean+max``: richer fixed pooling, same regression;
* ``attention``: a learned softmax attention over tokens with a linear value head, trained with AdamW;
* ``blocks_k<k>`` (``--blocks 2,4``): the fine-tuned top-k blocks head of ``training.train`` (``--heads blocks``),
  trained on the same train rows; it reuses that run's checkpoint under ``runs/<name>/heads/`` when there is one.

Test AUROC overall and per source, written as JSON. These are in-distribution numbers on the run's own split;
the leave-one-source-out table of ``training.train`` is what chooses the shipped head. Nothing here is imported
at scoring time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from training.data import REPO_ROOT

ATTENTION_EPOCHS = 6
ATTENTION_BATCH = 32
PROBE_C = 0.002


class AttentionPool(torch.nn.Module):
    """Softmax attention over tokens; the text's logit is the attention-weighted sum of per-token logits."""

    def __init__(self, dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.query, self.value, self.drop = torch.nn.Linear(dim, 1), torch.nn.Linear(dim, 1), torch.nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = self.query(x).squeeze(-1).masked_fill(~mask, -1e9).softmax(-1)
        return (weights * self.value(self.drop(x)).squeeze(-1)).sum(-1)


def _aurocs(y: np.ndarray, s: np.ndarray, src: np.ndarray) -> dict:
    out = {"all": round(float(roc_auc_score(y, s)), 4)}
    for k in sorted(set(src)):
        out[str(k)] = round(float(roc_auc_score(y[src == k], s[src == k])), 4)
    return out


def pooled_regression(X: np.ndarray, y: np.ndarray, tr: np.ndarray) -> np.ndarray:
    scaler = StandardScaler().fit(X[tr])
    model = LogisticRegression(C=PROBE_C, max_iter=2000).fit(scaler.transform(X[tr]), y[tr])
    return model.decision_function(scaler.transform(X))


def attention_scores(H: list[np.ndarray], y: np.ndarray, tr: np.ndarray, seed: int = 0) -> np.ndarray:
    torch.manual_seed(seed)
    tokens = np.concatenate([H[i] for i in tr])
    mu, sd = tokens.mean(0), tokens.std(0) + 1e-6
    del tokens

    def batch(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        length = max(len(H[i]) for i in idx)
        X = np.zeros((len(idx), length, H[0].shape[1]), np.float32)
        M = np.zeros((len(idx), length), bool)
        for j, i in enumerate(idx):
            X[j, :len(H[i])], M[j, :len(H[i])] = (H[i] - mu) / sd, True
        return torch.from_numpy(X), torch.from_numpy(M)

    model = AttentionPool(H[0].shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    for epoch in range(ATTENTION_EPOCHS):
        model.train()
        order = np.random.default_rng(seed + epoch).permutation(tr)
        for b in range(0, len(order), ATTENTION_BATCH):
            idx = order[b:b + ATTENTION_BATCH]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(*batch(idx)), torch.tensor(y[idx], dtype=torch.float32))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    everything = np.arange(len(H))
    with torch.no_grad():
        return np.concatenate([model(*batch(everything[b:b + 64])).numpy() for b in range(0, len(H), 64)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="smollm2-en", help="the training run (runs/<name>/)")
    ap.add_argument("--runs-dir", default=str(REPO_ROOT / "runs"))
    ap.add_argument("--out", default=None, help="JSON output (default: print only)")
    ap.add_argument("--blocks", default="", help="also fine-tuned top-k blocks heads, e.g. 2,4 (slow)")
    a = ap.parse_args(argv)

    from training.evaluate import prepared_from_run

    data = prepared_from_run(Path(a.runs_dir) / a.name, with_token_states=True)
    tr, te = data.idx("train"), data.idx("test")
    y, src = data.y, data.rows["source"].to_numpy()
    H = [r["hidden"].float().numpy() for r in data.records]
    mean = np.stack([h.mean(0) for h in H])
    scores = {
        "mean": pooled_regression(mean, y, tr),
        "mean+std": pooled_regression(np.hstack([mean, np.stack([h.std(0) for h in H])]), y, tr),
        "mean+max": pooled_regression(np.hstack([mean, np.stack([h.max(0) for h in H])]), y, tr),
        "attention": attention_scores(H, y, tr),
    }
    if a.blocks:
        from training.config import Config
        from training.designs import BlocksDesign
        from training.fit import fit_head

        for k in (int(x) for x in a.blocks.split(",")):
            scores[f"blocks_k{k}"] = fit_head(data, tr, BlocksDesign(k), Config())[1]
    result = {"run": a.name, "n_train": int(len(tr)), "n_test": int(len(te)),
              "test_auroc": {k: _aurocs(y[te], s[te], src[te]) for k, s in scores.items()}}
    print(json.dumps(result, indent=1))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
