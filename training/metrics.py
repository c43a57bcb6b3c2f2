"""Evaluation metrics for a detector's P(AI), as pure functions over numpy arrays.

Conventions everywhere: ``y`` is 1 for AI text and 0 for human text; ``p`` is the predicted
P(AI) in [0, 1]; a text is flagged as AI at threshold ``t`` when ``p >= t``. Metrics that are
undefined for the data (e.g. AUROC with one class) return NaN here; use :func:`json_safe`
before writing them to JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from detector.thresholds import threshold_at_fnr, threshold_at_fpr  # noqa: F401 (re-exported)

# Upper-exclusive token-count edges of the length buckets: <32, 32-63, 64-127, 128-255, >=256.
LENGTH_BUCKET_EDGES: tuple[int, ...] = (32, 64, 128, 256)
LENGTH_BUCKET_LABELS: tuple[str, ...] = (
    f"<{LENGTH_BUCKET_EDGES[0]}",
    *(f"{lo}-{hi - 1}" for lo, hi in zip(LENGTH_BUCKET_EDGES[:-1], LENGTH_BUCKET_EDGES[1:], strict=True)),
    f">={LENGTH_BUCKET_EDGES[-1]}",
)
UNKNOWN_LENGTH = "unknown"
SUMMARY_KEYS: tuple[str, ...] = ("n", "n_ai", "n_human", "auroc", "tpr_at_1fpr", "tpr_at_5fpr", "ece", "brier",
                                 "accuracy_at_0_5")


def _arrays(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated 1-D copies: y in {0, 1}, finite p in [0, 1], same length (bad input fails loudly)."""
    y_arr = np.asarray(y, dtype=float).ravel()
    p_arr = np.asarray(p, dtype=float).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y and p differ in length: {y_arr.size} vs {p_arr.size}")
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("y must contain only 0 (human) and 1 (AI)")
    if not np.isfinite(p_arr).all() or (p_arr < 0).any() or (p_arr > 1).any():
        raise ValueError("p must be finite probabilities in [0, 1]")
    return y_arr.astype(int), p_arr


def _both_classes(y: np.ndarray) -> bool:
    return bool((y == 1).any() and (y == 0).any())


def auroc(y: Any, p: Any) -> float:
    """Area under the ROC curve; NaN when only one class is present (it is undefined, not 0.5)."""
    y, p = _arrays(y, p)
    if not _both_classes(y):
        return math.nan
    return float(roc_auc_score(y, p))


def tpr_at_fpr(y: Any, p: Any, fpr: float) -> float:
    """Best TPR achieved by an actual threshold whose FPR on the human texts is <= ``fpr``.

    Thresholds are the observed scores (rule ``p >= t``), so ties between a human and an AI score
    move together and nothing is interpolated: the value is what a real operating point gets.
    Because TPR rises as the threshold falls, this is the TPR at the lowest threshold that still
    keeps FPR <= ``fpr`` (with FPR = 0 always reachable by a threshold above every score).
    NaN when either class is missing.
    """
    y, p = _arrays(y, p)
    if not _both_classes(y):
        return math.nan
    fprs, tprs, _ = roc_curve(y, p, drop_intermediate=False)
    ok = fprs <= fpr  # fprs[0] == 0 (threshold above every score), so ok is never empty
    return float(tprs[ok].max())


def reliability_bins(y: Any, p: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per-bin counts, mean P(AI) and AI fraction over ``n_bins`` equal-width bins of [0, 1].

    Bin i holds ``edges[i] <= p < edges[i+1]``; the last bin also holds p == 1. Empty bins have
    count 0 and NaN means. Shared by the ECE and the reliability diagram so both use one binning.
    """
    y, p = _arrays(y, p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / count, np.nan)
        frac_ai = np.where(count > 0, sum_y / count, np.nan)
    return {"edges": edges, "count": count, "mean_p": mean_p, "frac_ai": frac_ai}


def expected_calibration_error(y: Any, p: Any, n_bins: int = 15) -> float:
    """ECE: sum over equal-width bins of (bin count / n) * |AI fraction - mean P(AI)|.

    Weighting by bin count means sparse extreme bins matter in proportion to how often they
    occur. NaN for empty input.
    """
    y_arr, _ = _arrays(y, p)
    if y_arr.size == 0:
        return math.nan
    bins = reliability_bins(y, p, n_bins)
    filled = bins["count"] > 0
    gaps = np.abs(bins["frac_ai"][filled] - bins["mean_p"][filled])
    return float(np.sum(bins["count"][filled] * gaps) / y_arr.size)


def brier(y: Any, p: Any) -> float:
    """Brier score (mean squared error of P(AI)); NaN for empty input."""
    y, p = _arrays(y, p)
    if y.size == 0:
        return math.nan
    return float(brier_score_loss(y, p, labels=[0, 1]))


def summarize(y: Any, p: Any) -> dict[str, Any]:
    """All headline metrics of one model on one set, keyed by :data:`SUMMARY_KEYS`.

    ``accuracy_at_0_5`` flags AI at ``p >= 0.5``. Undefined metrics are NaN.
    """
    y, p = _arrays(y, p)
    n = int(y.size)
    empty = n == 0
    return {
        "n": n,
        "n_ai": int((y == 1).sum()),
        "n_human": int((y == 0).sum()),
        "auroc": auroc(y, p),
        "tpr_at_1fpr": tpr_at_fpr(y, p, 0.01),
        "tpr_at_5fpr": tpr_at_fpr(y, p, 0.05),
        "ece": math.nan if empty else expected_calibration_error(y, p),
        "brier": math.nan if empty else brier(y, p),
        "accuracy_at_0_5": math.nan if empty else float(np.mean((p >= 0.5).astype(int) == y)),
    }


INTERVAL_METRICS: tuple[str, ...] = ("auroc", "tpr_at_1fpr", "ece")


def bootstrap_intervals(y: Any, p: Any, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                        ) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of AUROC, TPR at 1% FPR and ECE: ``{metric: [low, high]}``.

    Why: a test split of a few hundred texts per class leaves the second decimal of AUROC and the first of
    TPR@1%FPR uncertain (1% of 300 humans is 3 texts), and a bar like "AUROC >= 0.95" deserves to be read
    with that width. Humans and AI texts are resampled separately (stratified), so every replicate keeps the
    test split's class balance. Empty when a class is missing.
    """
    y, p = _arrays(y, p)
    if not _both_classes(y):
        return {}
    rng = np.random.default_rng(seed)
    ai, human = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    metrics = {"auroc": auroc, "tpr_at_1fpr": lambda a, b: tpr_at_fpr(a, b, 0.01),
               "ece": expected_calibration_error}
    draws: dict[str, list[float]] = {k: [] for k in INTERVAL_METRICS}
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(ai, ai.size), rng.choice(human, human.size)])
        for k in INTERVAL_METRICS:
            draws[k].append(metrics[k](y[idx], p[idx]))
    tail = 100 * (1 - level) / 2
    return {k: [float(v) for v in np.percentile(draws[k], [tail, 100 - tail])] for k in INTERVAL_METRICS}


def json_safe(obj: Any) -> Any:
    """A copy that strict JSON accepts: NaN/inf become None, numpy scalars/arrays become Python ones."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def _group_value(value: Any) -> Any:
    """A JSON-friendly group key: missing values become None, numpy scalars Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def by_group(df: pd.DataFrame, group_col: str, y_col: str = "y", p_col: str = "p", min_n: int = 20,
             order: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """One JSON-safe :func:`summarize` dict per value of ``group_col`` (key ``group``).

    Every group is listed, including missing values (group None); those with fewer than ``min_n``
    rows carry ``"small": True`` so readers do not over-read noisy numbers. Rows come in ``order``
    when given (listed values first, others after), else by size, largest first.
    """
    rows = []
    for value, part in df.groupby(group_col, dropna=False, sort=False):
        key = value[0] if isinstance(value, tuple) and len(value) == 1 else value
        summary = summarize(part[y_col].to_numpy(), part[p_col].to_numpy())
        rows.append(json_safe({"group": _group_value(key), **summary, "small": summary["n"] < min_n}))
    if order is not None:
        rank = {v: i for i, v in enumerate(order)}
        rows.sort(key=lambda r: (rank.get(r["group"], len(rank)), -r["n"], str(r["group"])))
    else:
        rows.sort(key=lambda r: (-r["n"], str(r["group"])))
    return rows


def length_bucket(n_tokens: float | int | None) -> str:
    """Bucket label for a token count, by :data:`LENGTH_BUCKET_EDGES` ("unknown" when missing)."""
    if n_tokens is None or (isinstance(n_tokens, float) and math.isnan(n_tokens)) or n_tokens is pd.NA:
        return UNKNOWN_LENGTH
    i = int(np.searchsorted(LENGTH_BUCKET_EDGES, float(n_tokens), side="right"))
    return LENGTH_BUCKET_LABELS[i]
