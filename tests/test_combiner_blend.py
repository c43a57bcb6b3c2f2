"""Blending the combined model toward the zero-shot-only one: still one linear model, exactly the blend."""

from __future__ import annotations

import numpy as np
import pytest

from detector.combiner import CalibratedCombiner


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = np.column_stack([y + rng.normal(0, 1, n), rng.normal(0, 1, n), 2 * y + rng.normal(0, 1, n)])
    return X, y


def test_blend_is_the_weighted_decision_and_recalibrated() -> None:
    X, y = _data()
    full = CalibratedCombiner(["a", "b", "head"], C=1.0).fit(X, y)
    part = CalibratedCombiner(["a", "b"], C=1.0).fit(X[:, :2], y)
    for w in (0.0, 0.5, 1.0):
        mixed = CalibratedCombiner.blend(full, part, w, y)
        expected = w * full.decision_function(X) + (1 - w) * part.decision_function(X[:, :2])
        assert mixed.decision_function(X) == pytest.approx(expected)
        assert mixed.oof_proba_.shape == (len(y),)
        restored = CalibratedCombiner.from_dict(mixed.to_dict())
        assert restored.predict_proba(X)[:, 1] == pytest.approx(mixed.predict_proba(X)[:, 1])


def test_blend_refuses_combiners_fit_on_different_rows() -> None:
    X, y = _data()
    full = CalibratedCombiner(["a", "b", "head"], C=1.0).fit(X, y)
    part = CalibratedCombiner(["a", "b"], C=1.0).fit(X[:200, :2], y[:200])
    with pytest.raises(ValueError):
        CalibratedCombiner.blend(full, part, 0.5, y)


def test_blend_appends_the_features_only_the_part_reads() -> None:
    """A head-only model blended toward a zero-shot feature it does not read: one model over both columns."""
    X, y = _data()
    full = CalibratedCombiner(["head"], C=1.0).fit(X[:, 2:], y)
    part = CalibratedCombiner(["a"], C=1.0).fit(X[:, :1], y)
    mixed = CalibratedCombiner.blend(full, part, 0.25, y)
    assert mixed.feature_names == ["head", "a"]
    expected = 0.25 * full.decision_function(X[:, 2:]) + 0.75 * part.decision_function(X[:, :1])
    assert mixed.decision_function(X[:, [2, 0]]) == pytest.approx(expected)
