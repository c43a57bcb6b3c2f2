"""Thresholds that hold in every measurable group of human writers, not only on the pooled set."""

from __future__ import annotations

import numpy as np
import pytest

from detector.thresholds import threshold_at_fpr, threshold_at_fpr_per_group


def test_strictest_group_wins_and_holds_in_each_group() -> None:
    rng = np.random.default_rng(0)
    easy, hard = rng.uniform(0, 0.5, 900), rng.uniform(0.3, 0.95, 100)  # "hard" humans look more like AI
    p = np.concatenate([easy, hard])
    groups = np.array(["easy"] * 900 + ["hard"] * 100)
    pooled = threshold_at_fpr(p, 0.01)
    t = threshold_at_fpr_per_group(p, groups, 0.01, min_n=50)
    assert t > pooled
    for name in ("easy", "hard"):
        assert np.mean(p[groups == name] >= t) <= 0.01
    assert np.mean(hard >= pooled) > 0.01  # the pooled threshold broke the promise for the hard group


def test_small_groups_fall_back_to_the_pooled_threshold() -> None:
    p = np.concatenate([np.linspace(0, 0.5, 190), np.full(10, 0.99)])  # a tiny group of AI-looking humans
    groups = np.array(["a"] * 190 + ["tiny"] * 10)
    t = threshold_at_fpr_per_group(p, groups, 0.01, min_n=50)
    assert t == max(threshold_at_fpr(p, 0.01), threshold_at_fpr(p[:190], 0.01))
    with pytest.raises(ValueError):
        threshold_at_fpr_per_group(p, groups[:5], 0.01)
