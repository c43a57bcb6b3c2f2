"""The length-aware calibration: confidence that grows with a text's length, and still a monotone score map."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from detector.combiner import CalibratedCombiner, Calibrator
from training.metrics import expected_calibration_error


def _scores_whose_evidence_grows_with_length(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A raw score whose separation grows like sqrt(length), as a mean over tokens' evidence does."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    n_tokens = rng.integers(16, 257, n).astype(float)
    z = (2 * y - 1) * 0.08 * np.sqrt(n_tokens) + rng.normal(0, 1, n)
    return z, y, n_tokens


def test_length_aware_platt_is_better_calibrated_per_length_and_monotone() -> None:
    z, y, n = _scores_whose_evidence_grows_with_length(6000, seed=0)
    z_new, y_new, n_new = _scores_whose_evidence_grows_with_length(6000, seed=1)
    plain = Calibrator("platt").fit(z, y)
    by_length = Calibrator("platt_length").fit(z, y, n)
    assert by_length.method == "platt_length" and by_length.needs_length
    for lo, hi in ((16, 48), (200, 257)):  # one line is over-confident on short texts, under-confident on long
        sel = (n_new >= lo) & (n_new < hi)
        ece_plain = expected_calibration_error(y_new[sel], plain.transform(z_new[sel]))
        ece_length = expected_calibration_error(y_new[sel], by_length.transform(z_new[sel], n_new[sel]))
        assert ece_length < ece_plain - 0.02
    grid = np.linspace(-5, 5, 201)
    for length in (1, 16, 64, 256, 10_000):  # clipped outside the fitted range, increasing in z everywhere
        p = by_length.transform(grid, np.full_like(grid, length))
        assert np.all(np.diff(p) >= 0) and p[-1] > p[0]
    restored = Calibrator.from_dict(by_length.to_dict())
    assert restored.transform(z_new, n_new) == pytest.approx(by_length.transform(z_new, n_new))
    with pytest.raises(ValueError, match="n_tokens"):
        by_length.transform(z_new)


def test_length_aware_platt_falls_back_to_one_line_when_it_would_not_be_increasing() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(16, 257, 4000).astype(float)
    y = rng.integers(0, 2, 4000)
    # the score points the right way on short texts and the wrong way on long ones
    z = np.where(n < 100, 1.0, -1.0) * (2 * y - 1) + rng.normal(0, 0.5, 4000)
    cal = Calibrator("platt_length").fit(z, y, n)
    assert cal.method == "platt" and not cal.needs_length
    assert cal.to_dict()["method"] == "platt"


def test_a_few_one_token_texts_do_not_force_the_length_aware_fit_back_to_one_line() -> None:
    """Slope 1 + 0.5 log(n/64): positive from 16 tokens up, negative at 1 token. HC3-Plus-like 1-3-token
    answers among the fit texts must not set the length range (that silently made the English bundle one
    line); below the 16-token floor a text gets the 16-token slope."""
    from detector.combiner import LENGTH_FLOOR

    rng = np.random.default_rng(3)
    n = np.concatenate([rng.integers(16, 257, 4000), rng.integers(1, 4, 40)]).astype(float)
    slope = 1.0 + 0.5 * np.log(np.maximum(n, LENGTH_FLOOR) / 64.0)
    z = rng.normal(0, 2, len(n))
    y = (rng.random(len(n)) < 1 / (1 + np.exp(-slope * z))).astype(int)
    cal = Calibrator("platt_length").fit(z, y, n)
    assert cal.method == "platt_length" and cal.n_min_ == LENGTH_FLOOR
    p = cal.transform(np.array([1.0, 1.0]), np.array([1.0, LENGTH_FLOOR]))
    assert p[0] == p[1] > 0.5  # a 1-token text gets the 16-token slope


def test_combiner_with_length_aware_calibration_reads_n_tokens_from_rows_and_blends() -> None:
    z, y, n = _scores_whose_evidence_grows_with_length(1500, seed=2)
    rng = np.random.default_rng(3)
    X = np.column_stack([z, rng.normal(0, 1, len(y)) + 0.3 * y])
    full = CalibratedCombiner(["a", "b"], C=1.0, calibration="platt_length").fit(X, y, n)
    part = CalibratedCombiner(["a"], C=1.0, calibration="platt_length").fit(X[:, :1], y, n)
    assert full.method_ == "platt_length" and full.needs_length
    rows = [{"a": float(a), "b": float(b), "n_tokens": float(k)} for (a, b), k in zip(X[:5], n[:5])]
    assert full.predict_rows(rows) == pytest.approx(full.predict_proba(X[:5], n[:5])[:, 1])
    mixed = CalibratedCombiner.blend(full, part, 0.5, y)
    assert mixed.method_ == "platt_length"
    restored = CalibratedCombiner.from_dict(mixed.to_dict())
    assert restored.predict_rows(rows) == pytest.approx(mixed.predict_rows(rows))
    # the same raw score is worth more confidence on a long text than on a short one
    X_same = np.repeat(X[:1], 2, axis=0)
    p_short, p_long = mixed.predict_proba(X_same, np.array([20.0, 250.0]))[:, 1]
    assert abs(p_long - 0.5) > abs(p_short - 0.5)
    with pytest.raises(ValueError):
        CalibratedCombiner(["a"], calibration="platt_length").fit(X[:, :1], y)


def test_calibrating_on_the_answered_texts_fixes_their_under_confidence() -> None:
    """The detector abstains on short texts; a Platt line fit on them too is flattened by their weak evidence,
    so the long texts it does answer come out under-confident. ``calibrate_from`` fits the calibrator on the
    answered texts only, keeps every row's out-of-fold probability, and survives blending and saving."""
    z, y, n = _scores_whose_evidence_grows_with_length(4000, seed=4)
    z_new, y_new, n_new = _scores_whose_evidence_grows_with_length(4000, seed=5)
    rng = np.random.default_rng(6)
    X = np.column_stack([z, rng.normal(0, 1, len(y))])
    X_new = np.column_stack([z_new, rng.normal(0, 1, len(y_new))])
    every = CalibratedCombiner(["a", "b"], C=1.0, calibration="platt").fit(X, y, n)
    answered = CalibratedCombiner(["a", "b"], C=1.0, calibration="platt", calibrate_from=128).fit(X, y, n)
    assert answered.calibrated_on_ == int(np.sum(n >= 128)) and len(answered.oof_proba_) == len(y)
    long = n_new >= 128
    p_every, p_answered = every.predict_proba(X_new[long])[:, 1], answered.predict_proba(X_new[long])[:, 1]
    assert np.mean(np.abs(p_answered - 0.5)) > np.mean(np.abs(p_every - 0.5)) + 0.02  # more confident there
    assert log_loss(y_new[long], p_answered) < log_loss(y_new[long], p_every)  # and rightly so
    part = CalibratedCombiner(["a"], C=1.0, calibration="platt", calibrate_from=128).fit(X[:, :1], y, n)
    mixed = CalibratedCombiner.blend(answered, part, 0.5, y)
    assert mixed.calibrate_from == 128 and mixed.calibrated_on_ == answered.calibrated_on_
    restored = CalibratedCombiner.from_dict(mixed.to_dict())
    assert restored.calibrate_from == 128
    assert restored.predict_proba(X_new)[:, 1] == pytest.approx(mixed.predict_proba(X_new)[:, 1])


def test_calibrate_from_uses_every_length_when_too_few_long_texts_remain() -> None:
    z, y, n = _scores_whose_evidence_grows_with_length(600, seed=7)
    n = np.minimum(n, 100.0)
    n[:5] = 200.0  # five long texts: too few of each class to calibrate on
    model = CalibratedCombiner(["a"], C=1.0, calibration="platt", calibrate_from=128).fit(z[:, None], y, n)
    assert model.calibrated_on_ == len(y)


@pytest.mark.parametrize("method", ["platt", "platt_length", "isotonic"])
def test_the_calibrator_keeps_the_order_above_the_displayed_cap(method: str) -> None:
    """Lines are set on the uncapped score: texts a reader sees as 0.999 are still ordered, so an `ai` line can sit
    above the top 1% of some source's humans that all read 0.999 (the routed English probe's 1.3% of DetectRL)."""
    from detector.combiner import PROB_FLOOR, displayed_probability
    from detector.thresholds import threshold_at_fpr

    z, y, n = _scores_whose_evidence_grows_with_length(4000, 3)
    cal = Calibrator(method).fit(z, y, n)
    grid = np.linspace(0, 200, 20001)
    p = cal.transform(grid, np.full(grid.size, 256.0))
    shown = displayed_probability(p)
    assert shown.max() == 1 - PROB_FLOOR and displayed_probability(0.0) == PROB_FLOOR
    if method != "isotonic":  # a sigmoid keeps rising past the cap; isotonic steps are flat by construction
        top = p[(p > 1 - PROB_FLOOR) & (p < 1 - 1e-9)]
        assert top.size > 100 and np.all(np.diff(top) > 0)
        humans = np.concatenate([np.full(980, 0.5), top[:20]])  # 2% of these humans above the cap
        assert 1 - PROB_FLOOR < threshold_at_fpr(humans, 0.01) < top[-1]
        assert threshold_at_fpr(displayed_probability(humans), 0.01) > 1 - PROB_FLOOR  # capped: no line left


def test_length_slopes_let_a_features_weight_move_with_length_and_survive_a_round_trip() -> None:
    """Feature ``a`` tells the classes apart on long texts and ``b`` on short ones: one weight per feature cannot
    read both, weights that move with log length can; saved and loaded, the combiner scores the same."""
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 2, n)
    n_tokens = rng.choice([30.0, 250.0], n)
    long = n_tokens > 100
    a = rng.normal(0, 1, n) + np.where(long, 2.0 * y, 0.0)
    b = rng.normal(0, 1, n) + np.where(long, 0.0, 2.0 * y)
    X = np.column_stack([a, b])
    tr, te = slice(0, 3000), slice(3000, None)
    flat = CalibratedCombiner(["a", "b"], C=1.0, calibration="platt").fit(X[tr], y[tr], n_tokens[tr])
    sloped = CalibratedCombiner(["a", "b"], C=1.0, calibration="platt", length_slopes=True).fit(
        X[tr], y[tr], n_tokens[tr])
    loss = {m: log_loss(y[te], c.predict_proba(X[te], n_tokens[te])[:, 1]) for m, c in
            (("flat", flat), ("sloped", sloped))}
    assert loss["sloped"] < loss["flat"] - 0.05
    assert sloped.needs_length and not flat.needs_length
    again = CalibratedCombiner.from_dict(sloped.to_dict())
    rows = [{"a": float(x[0]), "b": float(x[1]), "n_tokens": float(k)} for x, k in zip(X[te], n_tokens[te])]
    assert np.allclose(again.predict_rows(rows), sloped.predict_proba(X[te], n_tokens[te])[:, 1])
    with pytest.raises(ValueError, match="n_tokens"):
        CalibratedCombiner(["a", "b"], length_slopes=True).fit(X, y)
    # weights are not extrapolated past the lengths they were learned on: 30 and 250 tokens here
    x = X[te][:5]
    assert np.allclose(sloped.decision_function(x, np.full(5, 4000.0)), sloped.decision_function(x, np.full(5, 250.0)))
    assert np.allclose(sloped.decision_function(x, np.full(5, 3.0)), sloped.decision_function(x, np.full(5, 30.0)))
