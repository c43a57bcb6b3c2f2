"""Decision thresholds from calibration-set probabilities (pure functions, shared with training)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Guards floor(rate * n) against float noise such as 0.29 * 100 = 28.999999999999996.
_COUNT_EPS = 1e-9


def _scores(p: Any) -> np.ndarray:
    arr = np.asarray(p, dtype=float).ravel()
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError("need at least one score, all finite")
    return arr


def threshold_at_fpr(p_human: Any, fpr: float) -> float:
    """Smallest threshold t with (fraction of human scores >= t) <= ``fpr``: flag AI when p >= t.

    With k = floor(fpr * n) human texts allowed above the line and s the (k+1)-th largest human
    score, exactly the t > s qualify, so the answer is the next float above s
    (``np.nextafter(s, inf)``); the human share at or above it is then <= fpr on this set.
    ``fpr = 0`` gives just above the top human score (possibly a hair above 1.0, i.e. never flag).
    When fpr >= 1 any t qualifies, and the lowest human score is returned (every human flagged).
    """
    s = np.sort(_scores(p_human))[::-1]
    k = int(math.floor(fpr * s.size + _COUNT_EPS))
    if k >= s.size:
        return float(s[-1])
    return float(np.nextafter(s[k], np.inf))


def threshold_at_fnr(p_ai: Any, fnr: float) -> float:
    """Largest threshold t with (fraction of AI scores <= t) <= ``fnr``: call human when p <= t.

    Mirror of :func:`threshold_at_fpr`: with k = floor(fnr * n) AI texts allowed at or below the
    line and a the (k+1)-th smallest AI score, exactly the t < a qualify, so the answer is the next
    float below a (``np.nextafter(a, -inf)``). ``fnr = 0`` gives just below the lowest AI score.
    When fnr >= 1 any t qualifies, and the highest AI score is returned (every AI text called human).
    """
    a = np.sort(_scores(p_ai))
    k = int(math.floor(fnr * a.size + _COUNT_EPS))
    if k >= a.size:
        return float(a[-1])
    return float(np.nextafter(a[k], -np.inf))


def threshold_at_fpr_per_group(p_human: Any, groups: Any, fpr: float, min_n: int = 50) -> float:
    """The smallest threshold whose FPR is <= ``fpr`` overall *and* within every group of >= ``min_n`` humans.

    Why: a 1% FPR measured on pooled humans can hide 5% on one kind of writer (short answers, student essays,
    one source). Taking the strictest group threshold makes the promise hold for each group the calibration
    data can measure; groups too small to measure a 1% rate fall back to the pooled one.
    """
    p = _scores(p_human)
    g = np.asarray(groups).ravel()
    if g.shape != p.shape:
        raise ValueError(f"groups and scores differ in length: {g.size} vs {p.size}")
    candidates = [threshold_at_fpr(p, fpr)]
    for value in np.unique(g):
        sel = g == value
        if sel.sum() >= min_n:
            candidates.append(threshold_at_fpr(p[sel], fpr))
    return float(max(candidates))
