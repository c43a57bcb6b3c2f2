"""Decision thresholds from calibration-set probabilities (pure functions)."""

from __future__ import annotations

import numpy as np


def threshold_at_fpr(p_human: np.ndarray, fpr: float) -> float:
    """Smallest t such that the share of human texts with p >= t is at most ``fpr``."""
    p = np.sort(np.asarray(p_human, dtype=np.float64))
    n = len(p)
    if n == 0:
        return 1.0
    allowed = int(np.floor(fpr * n))  # humans that may sit at or above t
    if allowed >= n:
        return float(p[0])
    # t just above the (n - allowed)-th smallest value keeps exactly `allowed` humans at or above t
    return float(np.nextafter(p[n - allowed - 1], np.inf))


def threshold_at_fnr(p_ai: np.ndarray, fnr: float) -> float:
    """Largest t such that the share of AI texts with p <= t is at most ``fnr``."""
    p = np.sort(np.asarray(p_ai, dtype=np.float64))
    n = len(p)
    if n == 0:
        return 0.0
    allowed = int(np.floor(fnr * n))
    if allowed >= n:
        return float(p[-1])
    return float(np.nextafter(p[allowed], -np.inf))
