"""Step 5 of training: the bundle's decision lines, the `ai` and `human` thresholds and the `min_tokens`
abstention, set on out-of-fold probabilities of the fit rows.

The `ai` rule: the strictest 1%-FPR line over every group of human writers the fit data can measure (all,
each source, each length bucket from ``min_tokens`` on) and over each source's humans scored by a model fit
without that source, so the promise holds per kind of writer and for writers of a kind never seen.
``detector.thresholds`` holds the per-group primitives the detector shares; this module holds the training
rules built on them.
"""

from __future__ import annotations

import numpy as np

from detector.thresholds import threshold_at_fnr, threshold_at_fpr
from training.config import Config
from training.designs import combiner_rows, head_designs
from training.fit import fit_combiners, fit_head
from training.metrics import auroc, length_bucket
from training.prepared import Prepared

TARGET_FPR = 0.01  # share of human calibration texts allowed at or above the `ai` threshold
TARGET_FNR = 0.01  # share of AI calibration texts allowed at or below the `human` threshold
MIN_TOKEN_CANDIDATES = (16, 32, 64, 128)  # lower edges of the length buckets tried for `insufficient_text`
MIN_BUCKET_AUROC = 0.85  # a length bucket below this AUROC on cal is "where accuracy collapses"
MIN_GROUP_HUMANS = 100  # a source or length bucket needs this many human fit texts to set its own `ai` line


def choose_min_tokens(n_tokens: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[int, list[dict]]:
    """Shortest length from which every length bucket keeps AUROC >= MIN_BUCKET_AUROC on cal."""
    edges = list(MIN_TOKEN_CANDIDATES) + [10**9]
    table = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (n_tokens >= lo) & (n_tokens < hi)
        a = auroc(y[sel], p[sel]) if sel.sum() >= 10 else float("nan")
        table.append({"min_tokens": lo, "max_tokens": hi if hi < 10**9 else None, "n": int(sel.sum()),
                      "auroc": None if np.isnan(a) else round(float(a), 4)})
    chosen = MIN_TOKEN_CANDIDATES[-1]
    for i in range(len(table) - 1, -1, -1):
        if table[i]["auroc"] is not None and table[i]["auroc"] < MIN_BUCKET_AUROC:
            break
        chosen = table[i]["min_tokens"]
    return int(chosen), table


def measure_min_tokens(cfg: Config, data: Prepared, idx: dict[str, np.ndarray]) -> tuple[int, list[dict]]:
    """``choose_min_tokens`` on the out-of-fold P(AI) of the grid's first design, fit on every length.

    Measured before the design grid because, with ``--calibrate-on answered``, the grid's calibrations learn
    from the answered texts only. Which design measures the buckets matters little next to the bar (see
    docs/decisions.md).
    """
    design = head_designs(cfg, data.layers)[0]
    logits = fit_head(data, idx["train"], design, cfg)[1]
    fit = combiner_rows(design, idx["train"], idx["cal"])
    full = fit_combiners(data, logits, fit, cfg.seed, design.zero_shot, cfg.calibration[0])[0]
    return choose_min_tokens(data.n_tokens[fit], data.y[fit], full.oof_proba_)


def ai_line(data: Prepared, rows: np.ndarray, p: np.ndarray, min_tokens: int = 0) -> float:
    """The in-distribution `ai` threshold from out-of-fold probabilities ``p`` of ``rows``: the strictest
    1%-FPR line over the human groups of :func:`human_groups`, so the promise holds for every writer the fit
    data can measure."""
    return max(threshold_at_fpr(q, TARGET_FPR) for q in human_groups(data, rows, p, {}, min_tokens).values())


def unseen_source_line(held_out_humans: dict[str, np.ndarray]) -> float:
    """The `ai` line's unseen-source part: the strictest 1%-FPR line over sources, each source's humans scored
    by a model fit without that source (0 when no source has ``MIN_GROUP_HUMANS`` humans).

    Why: the in-distribution line holds for the sources it was set on, but a kind of writer the model never
    saw scores higher (see docs/decisions.md). Setting the line where each training source's humans stay under
    1% *as if unseen* carries the promise to new writers.
    """
    lines = [threshold_at_fpr(p, TARGET_FPR) for p in held_out_humans.values() if len(p) >= MIN_GROUP_HUMANS]
    return float(max(lines, default=0.0))


def human_groups(data: Prepared, rows: np.ndarray, p: np.ndarray, held_out_humans: dict[str, np.ndarray],
                 min_tokens: int = 0) -> dict[str, np.ndarray]:
    """Every human group the `ai` rule takes its strictest line over: all fit-row humans, each source and
    each length bucket from ``min_tokens`` on with ``MIN_GROUP_HUMANS`` humans (out-of-fold; the answered
    humans together too), and each source's humans scored by the model fit without it.

    Length buckets count only from ``min_tokens`` on: a shorter text gets ``insufficient_text``, never ``ai``,
    so its bucket cannot break the promise, and short texts would otherwise set the line for everyone (see
    docs/decisions.md). All humans still count in the pooled and per-source groups. Stored in the bundle, the
    groups let ``Detector.ai_line(target_fpr)`` apply the same rule at a target the caller chooses; a pooled
    line alone would drop the per-writer promise.
    """
    humans = data.y[rows] == 0
    ph = p[humans]
    answered = data.n_tokens[rows][humans] >= min_tokens
    groups = {"all": ph}
    if min_tokens and answered.any():
        groups[f"length>={min_tokens}"] = ph[answered]
    for kind, labels, keep in (("source", data.rows["source"].to_numpy()[rows][humans], np.ones_like(answered)),
                               ("length", np.asarray([length_bucket(n) for n in data.n_tokens[rows]])[humans],
                                answered)):
        for value in np.unique(labels[keep]):
            sel = keep & (labels == value)
            if sel.sum() >= MIN_GROUP_HUMANS:
                groups[f"{kind}={value}"] = ph[sel]
    for source, q in held_out_humans.items():
        if len(q) >= MIN_GROUP_HUMANS:
            groups[f"unseen={source}"] = np.asarray(q)
    return groups


def decision_thresholds(cfg: Config, data: Prepared, rows: np.ndarray, p: np.ndarray,
                        held_out_humans: dict[str, np.ndarray], min_tokens: int, length_table: list[dict],
                        answered_from: int = 0) -> dict:
    """The manifest's ``thresholds``: the `ai` line (in-distribution and unseen-source parts), the `human`
    line, ``min_tokens`` and how each was set, from the out-of-fold probabilities ``p`` of ``rows``.

    ``held_out_humans``: each source's humans scored by the model fit without it (``unseen_source_line``);
    ``answered_from``: the ``min_tokens`` the calibration learned from (0: every length).
    """
    y = data.y[rows]
    t_ai_seen = ai_line(data, rows, p, min_tokens)
    t_ai_unseen = unseen_source_line(held_out_humans)
    t_ai = max(t_ai_seen, t_ai_unseen)
    t_human = min(threshold_at_fnr(p[y == 1], TARGET_FNR), t_ai)
    return {"ai": t_ai, "human": t_human, "target_fpr": TARGET_FPR, "target_fnr": TARGET_FNR,
            "ai_rule": f"strictest 1%-FPR line over all humans, each source and each length bucket from "
                       f"min_tokens on with >= {MIN_GROUP_HUMANS} human texts (out-of-fold, train + cal), and "
                       f"over each source's "
                       f"train + cal humans scored by the leave-one-source-out model fit without it",
            "ai_in_distribution": t_ai_seen, "ai_unseen_source": t_ai_unseen,
            "min_tokens": min_tokens, "min_tokens_measurement": length_table,
            "min_tokens_measured_with": (f"{head_designs(cfg, data.layers)[0].name}, out-of-fold"
                                         if answered_from else "the shipped model, out-of-fold"),
            "calibrated_on": (f"train + cal texts of >= {answered_from} tokens (the answered ones)"
                              if answered_from else "train + cal texts of every length"),
            "min_bucket_auroc": MIN_BUCKET_AUROC}
