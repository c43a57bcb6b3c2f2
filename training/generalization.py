"""Generalisation tables: leave-one-source-out, leave-one-generator-out, and the zero-shot guard.

Why: in-distribution numbers flatter. A detector is worth what it does on collections and generators it
never saw, so every design choice is judged by these tables. Each fold refits every trainable part (head,
combiner, calibrator) without the held-out group, then scores the group; the reference each fold must
not lose to is the best single zero-shot feature, its direction fixed on the fold's own training data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from training.metrics import auroc, expected_calibration_error, tpr_at_fpr

# A model may trail the best single zero-shot feature by at most this much AUROC on any held-out fold.
ZERO_SHOT_MARGIN = 0.02


@dataclass
class Fold:
    """Row indices of one generalisation fold: fit on ``train``/``cal``, score ``test`` (never seen)."""

    name: str
    train: np.ndarray
    cal: np.ndarray
    test: np.ndarray


def _usable(rows: pd.DataFrame, fold: Fold) -> bool:
    """Both classes on every side of the fold (else nothing can be fit or measured)."""
    labels = rows["label"].to_numpy()
    return all(len(set(labels[ix])) == 2 for ix in (fold.train, fold.cal, fold.test))


def leave_one_source_out(rows: pd.DataFrame, min_n: int = 40) -> list[Fold]:
    """One fold per source: train/cal on the other sources' train/cal rows, test on every row of the source."""
    folds = []
    for source in sorted(rows["source"].unique()):
        held = (rows["source"] == source).to_numpy()
        if held.sum() < min_n or rows.loc[held, "label"].nunique() < 2:
            continue
        split = rows["split"].to_numpy()
        folds.append(Fold(source, np.flatnonzero(~held & (split == "train")), np.flatnonzero(~held & (split == "cal")),
                          np.flatnonzero(held)))
    return [f for f in folds if _usable(rows, f)]


def leave_one_generator_out(rows: pd.DataFrame, sources: Sequence[str], min_ai: int = 30) -> list[Fold]:
    """One fold per AI generator of ``sources``: its texts leave train/cal everywhere; the fold tests its
    texts (all splits: none were seen) against the test-split humans of the same source."""
    folds = []
    split = rows["split"].to_numpy()
    for source in sources:
        in_source = (rows["source"] == source).to_numpy()
        gens = rows.loc[in_source & (rows["label"] == "ai").to_numpy(), "generator"].value_counts()
        for gen, n in gens.items():
            if n < min_ai:
                continue
            held = (rows["generator"] == gen).to_numpy() & (rows["label"] == "ai").to_numpy()
            humans = in_source & (rows["label"] == "human").to_numpy() & (split == "test")
            folds.append(Fold(f"{source}/{gen}", np.flatnonzero(~held & (split == "train")),
                              np.flatnonzero(~held & (split == "cal")), np.flatnonzero(held | humans)))
    return [f for f in folds if _usable(rows, f)]


def inner_source_folds(rows: pd.DataFrame, fold: Fold, min_n: int = 40) -> list[Fold]:
    """Leave-one-source-out inside a fold's fit rows: for each of its training sources, fit on the others'
    train/cal rows and test on that source's fit rows. Never touches ``fold.test``, so a line set from these
    folds can be judged on the fold's held-out group honestly (nested cross-validation)."""
    src = rows["source"].to_numpy()
    fit = np.concatenate([fold.train, fold.cal])
    inner = [Fold(f"{fold.name}|without {s}", fold.train[src[fold.train] != s], fold.cal[src[fold.cal] != s],
                  fit[src[fit] == s]) for s in sorted(set(src[fit]))]
    return [f for f in inner if len(f.test) >= min_n and _usable(rows, f)]


def oriented_auroc(y_fit: np.ndarray, x_fit: np.ndarray, y_test: np.ndarray, x_test: np.ndarray) -> float:
    """AUROC of one feature on test, its direction (higher = AI or lower = AI) fixed on the fit data."""
    sign = 1.0 if auroc(y_fit, rank01(x_fit)) >= 0.5 else -1.0
    return auroc(y_test, rank01(sign * x_test))


def rank01(x: np.ndarray) -> np.ndarray:
    """Scores mapped into [0, 1] by rank (AUROC only needs the order; metrics want probabilities)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)
    ranks = rankdata(x)  # ties share a rank: a constant feature must score 0.5, not the row order
    return (ranks - 1) / max(len(x) - 1, 1)


def best_zero_shot(y: np.ndarray, X: np.ndarray, names: Sequence[str], fit: np.ndarray,
                   test: np.ndarray) -> tuple[str, float]:
    """The zero-shot feature with the best AUROC on ``fit`` rows (direction fixed there), and its test AUROC.

    Chosen on the fold's own data, never on the held-out group: a user cannot pick the feature after the fact.
    """
    fit_scores = [max(auroc(y[fit], rank01(X[fit, j])), 1 - auroc(y[fit], rank01(X[fit, j])))
                  for j in range(X.shape[1])]
    j = int(np.nanargmax(fit_scores))
    return names[j], oriented_auroc(y[fit], X[fit, j], y[test], X[test, j])


def fold_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"auroc": auroc(y, p), "tpr_at_1fpr": tpr_at_fpr(y, p, 0.01), "ece": expected_calibration_error(y, p),
            "n": int(len(y))}


def run_folds(folds: Sequence[Fold], y: np.ndarray, models: Mapping[str, Callable[[Fold], np.ndarray]],
              zero_shot: tuple[np.ndarray, Sequence[str]] | None = None) -> dict[str, dict]:
    """Score every model on every fold: {fold: {model: metrics, "best_zero_shot": {...}}}.

    Each model is ``fold -> P(AI) of fold.test`` and must fit only on ``fold.train`` / ``fold.cal``.
    """
    table: dict[str, dict] = {}
    for fold in folds:
        row: dict[str, dict] = {name: fold_metrics(y[fold.test], fn(fold)) for name, fn in models.items()}
        if zero_shot is not None:
            X, names = zero_shot
            fit = np.concatenate([fold.train, fold.cal])
            name, value = best_zero_shot(y, X, names, fit, fold.test)
            row["best_zero_shot"] = {"feature": name, "auroc": value, "n": int(len(fold.test))}
        table[fold.name] = row
    return table


def guard_check(table: Mapping[str, Mapping[str, dict]], model: str, margin: float = ZERO_SHOT_MARGIN) -> dict:
    """Does ``model`` stay within ``margin`` AUROC of the best zero-shot feature on every fold? Also the
    worst share of held-out humans its fold's own `ai` line accused (``ai_fpr``, when the table has it)."""
    if not table:
        return {"model": model, "margin": margin, "gaps": {}, "holds": None, "mean_auroc": None,
                "worst_ai_fpr": None}
    gaps = {fold: row[model]["auroc"] - row["best_zero_shot"]["auroc"] for fold, row in table.items()}
    fprs = [row[model]["ai_fpr"] for row in table.values() if "ai_fpr" in row[model]]
    return {"model": model, "margin": margin, "gaps": gaps, "holds": all(g >= -margin for g in gaps.values()),
            "mean_auroc": float(np.mean([row[model]["auroc"] for row in table.values()])),
            "worst_ai_fpr": float(max(fprs)) if fprs else None}


def mean_auroc(table: Mapping[str, Mapping[str, dict]], model: str) -> float:
    return float(np.mean([row[model]["auroc"] for row in table.values()])) if table else float("nan")
