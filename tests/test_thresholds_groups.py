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


def test_stored_groups_reproduce_the_shipped_ai_line() -> None:
    """The groups a bundle stores give back, at the shipped target, exactly the line training set."""
    from synthetic import three_source_prepared
    from training.train import MIN_GROUP_HUMANS, TARGET_FPR, ai_line, human_groups, unseen_source_line

    data = three_source_prepared(seed=1)
    rows = np.flatnonzero(data.rows["split"].to_numpy() != "test")
    rng = np.random.default_rng(0)
    p = np.clip(0.5 + 0.2 * data.Z[rows, 0] + rng.normal(0, 0.05, rows.size), 0, 1)
    held_out = {"A": rng.uniform(0, 1, 150), "B": rng.uniform(0, 0.8, 150), "tiny": rng.uniform(0, 1, 5)}
    groups = human_groups(data, rows, p, held_out)

    assert {"all", "source=A", "source=B", "source=C", "unseen=A", "unseen=B"} <= set(groups)
    assert "unseen=tiny" not in groups and all(len(g) >= MIN_GROUP_HUMANS for g in groups.values())
    assert all(len(g) == (data.y[rows] == 0).sum() for k, g in groups.items() if k == "all")
    shipped = max(ai_line(data, rows, p), unseen_source_line(held_out))
    assert max(threshold_at_fpr(g, TARGET_FPR) for g in groups.values()) == shipped

    # a length bucket the detector never answers (below min_tokens) does not set the line
    min_tokens = 128
    groups = human_groups(data, rows, p, held_out, min_tokens)
    short = {f"length={b}" for b in ("<32", "32-63", "64-127")}
    assert not short & set(groups) and f"length>={min_tokens}" in groups
    shipped = max(ai_line(data, rows, p, min_tokens), unseen_source_line(held_out))
    assert max(threshold_at_fpr(g, TARGET_FPR) for g in groups.values()) == shipped


def test_humans_below_min_tokens_cannot_raise_the_ai_line() -> None:
    """Three AI-looking short humans, one per source, set the short bucket's line while it counts; once that
    bucket is below ``min_tokens`` (they would get ``insufficient_text``) the line falls back."""
    from synthetic import three_source_prepared
    from training.train import ai_line

    data = three_source_prepared(seed=2)
    rows = np.flatnonzero(data.rows["split"].to_numpy() != "test")
    n, human = data.n_tokens[rows], data.y[rows] == 0
    assert ((n < 128) & human).sum() >= 100  # the short bucket is measurable
    p = np.where(human, 0.2, 0.9)
    src = data.rows["source"].to_numpy()[rows]
    for value, source in zip((0.95, 0.94, 0.93), ("A", "B", "C")):
        p[np.flatnonzero(human & (n < 128) & (src == source))[0]] = value
    assert ai_line(data, rows, p) > 0.9
    assert ai_line(data, rows, p, min_tokens=128) < 0.3
