"""Metrics checked against hand-computed cases, and the report writer end to end on synthetic data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.metrics import (
    LENGTH_BUCKET_LABELS,
    SUMMARY_KEYS,
    auroc,
    bootstrap_intervals,
    brier,
    by_group,
    expected_calibration_error,
    json_safe,
    length_bucket,
    summarize,
    threshold_at_fnr,
    threshold_at_fpr,
    tpr_at_fpr,
)
from training.report import write_report


def test_perfect_separation() -> None:
    y = np.array([0] * 50 + [1] * 50)
    p = np.concatenate([np.linspace(0.0, 0.4, 50), np.linspace(0.6, 1.0, 50)])
    assert auroc(y, p) == 1.0
    assert tpr_at_fpr(y, p, 0.01) == 1.0
    assert tpr_at_fpr(y, p, 0.0) == 1.0
    s = summarize(y, p)
    assert tuple(s) == SUMMARY_KEYS
    assert (s["n"], s["n_ai"], s["n_human"]) == (100, 50, 50)
    assert s["tpr_at_1fpr"] == s["tpr_at_5fpr"] == s["accuracy_at_0_5"] == 1.0


def test_single_class_is_nan() -> None:
    y, p = np.ones(5, dtype=int), np.full(5, 0.7)
    assert math.isnan(auroc(y, p))
    assert math.isnan(tpr_at_fpr(y, p, 0.01))
    s = summarize(y, p)
    assert math.isnan(s["auroc"]) and s["brier"] == pytest.approx(0.09)
    assert json_safe(s)["auroc"] is None


def test_tpr_at_fpr_exact_known_case() -> None:
    # 100 humans at 0.00..0.99 (one per 0.01): at 1% FPR only the human at 0.99 may be flagged,
    # so the lowest allowed threshold is just above 0.98 and AI at 0.985 counts, AI at 0.98 does not.
    humans = np.arange(100) / 100
    ai = np.array([0.995] * 3 + [0.985] * 2 + [0.98] * 1 + [0.5] * 4)
    y = np.array([0] * 100 + [1] * 10)
    p = np.concatenate([humans, ai])
    assert tpr_at_fpr(y, p, 0.01) == pytest.approx(0.5)
    # 5% FPR: humans >= 0.95 flagged (5 of them); AI >= 0.95 are 6 of 10.
    assert tpr_at_fpr(y, p, 0.05) == pytest.approx(0.6)
    # 0% FPR: only AI strictly above every human (0.995 > 0.99).
    assert tpr_at_fpr(y, p, 0.0) == pytest.approx(0.3)
    # Just under 1% no human may be flagged: no interpolation towards the 1% point.
    assert tpr_at_fpr(y, p, 0.0099) == pytest.approx(0.3)


def test_tpr_at_fpr_ties_are_conservative() -> None:
    # 10 humans, one at 0.9 tied with all AI: flagging the AI would flag 10% of humans > 5%.
    y = np.array([0] * 10 + [1] * 4)
    p = np.array([0.1] * 9 + [0.9] + [0.9] * 4)
    assert tpr_at_fpr(y, p, 0.05) == 0.0
    assert tpr_at_fpr(y, p, 0.10) == 1.0


def test_ece_calibrated_and_miscalibrated() -> None:
    # Bin at 0.25 with 1/4 AI, bin at 0.75 with 3/4 AI: perfectly calibrated.
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    p = np.array([0.25] * 4 + [0.75] * 4)
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    # All at 0.8 but half AI: |0.5 - 0.8| = 0.3.
    assert expected_calibration_error([1, 0, 1, 0], [0.8] * 4) == pytest.approx(0.3)
    # Weighted by count: 3 texts at 0.1 all human (gap 0.1), 1 text at 0.9 that is AI (gap 0.1)
    # plus one at 0.5 (own bin) human (gap 0.5): (3*0.1 + 1*0.1 + 1*0.5) / 5 = 0.18.
    assert expected_calibration_error([0, 0, 0, 1, 0], [0.1, 0.1, 0.1, 0.9, 0.5]) == pytest.approx(0.18)
    # p == 1.0 lands in the last bin rather than off the end.
    assert expected_calibration_error([1, 1], [1.0, 1.0]) == pytest.approx(0.0)


def test_brier() -> None:
    assert brier([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)


def test_threshold_at_fpr_exact() -> None:
    h = np.arange(1, 11) / 10  # 0.1 .. 1.0
    t = threshold_at_fpr(h, 0.1)  # one human may be >= t: t just above 0.9
    assert t == np.nextafter(0.9, np.inf)
    assert np.mean(h >= t) == pytest.approx(0.1)
    assert np.mean(h >= 0.9) > 0.1  # and nothing smaller qualifies
    assert threshold_at_fpr(h, 0.0) == np.nextafter(1.0, np.inf)
    assert threshold_at_fpr(h, 0.29) == np.nextafter(0.8, np.inf)  # floor(2.9) = 2 allowed: 0.9, 1.0
    h100 = np.arange(100) / 100  # 0.29 * 100 is 28.999... in floats but must allow 29 humans
    assert threshold_at_fpr(h100, 0.29) == np.nextafter(0.7, np.inf)
    assert threshold_at_fpr(h, 0.3) == np.nextafter(0.7, np.inf)  # 3 allowed: 0.8, 0.9, 1.0
    assert threshold_at_fpr(h, 1.0) == 0.1
    ties = np.array([0.5] * 5 + [0.9] * 5)
    assert threshold_at_fpr(ties, 0.3) == np.nextafter(0.9, np.inf)  # ties above: none may be flagged
    assert threshold_at_fpr(ties, 0.5) == np.nextafter(0.5, np.inf)


def test_threshold_at_fnr_exact() -> None:
    a = np.arange(1, 11) / 10
    t = threshold_at_fnr(a, 0.2)  # two AI may be <= t: t just below 0.3
    assert t == np.nextafter(0.3, -np.inf)
    assert np.mean(a <= t) == pytest.approx(0.2)
    assert np.mean(a <= 0.3) > 0.2
    assert threshold_at_fnr(a, 0.0) == np.nextafter(0.1, -np.inf)
    assert threshold_at_fnr(a, 1.0) == 1.0
    with pytest.raises(ValueError):
        threshold_at_fnr([], 0.1)


def test_length_bucket() -> None:
    got = [length_bucket(n) for n in (0, 31, 32, 63, 64, 127, 128, 255, 256, 5000)]
    assert got == ["<32", "<32", "32-63", "32-63", "64-127", "64-127", "128-255", "128-255", ">=256", ">=256"]
    assert LENGTH_BUCKET_LABELS == ("<32", "32-63", "64-127", "128-255", ">=256")
    assert length_bucket(None) == length_bucket(float("nan")) == "unknown"


def test_by_group_flags_small_and_single_class() -> None:
    df = pd.DataFrame({"g": ["a"] * 30 + ["b"] * 5, "y": [0, 1] * 15 + [1] * 5,
                       "p": [0.2, 0.8] * 15 + [0.9] * 5})
    rows = {r["group"]: r for r in by_group(df, "g")}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["small"] is False and rows["a"]["auroc"] == 1.0
    assert rows["b"]["small"] is True and rows["b"]["auroc"] is None and rows["b"]["n"] == 5
    json.dumps(list(rows.values()), allow_nan=False)


def _synthetic(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(1 / (1 + np.exp(-(2.5 * (2 * y - 1) + rng.normal(0, 1.5, n)))), 0, 1)
    labels = np.where(np.abs(p - 0.5) < 0.15, "uncertain", np.where(p >= 0.5, "ai", "human")).astype(object)
    labels[:7] = "insufficient_text"
    df = pd.DataFrame({
        "y": y, "p": p,
        "source": rng.choice(["detectrl", "outfox_dev", "hc3_plus"], n),
        "domain": rng.choice(["news", "essay", "qa", "rare"], n, p=[0.4, 0.3, 0.25, 0.05]),
        "generator": np.where(y == 1, rng.choice(["gpt-4", "llama"], n), "human"),
        "variant": rng.choice(["none", "paraphrase"], n),
        "n_tokens": rng.integers(5, 600, n),
        "label": labels,
    })
    ablation = {"combined": p, "lm_only": np.clip(p + rng.normal(0, 0.2, n), 0, 1), "stats_only": rng.uniform(0, 1, n)}
    return df, ablation


def _strict_load(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-strict JSON constant {name}")

    with path.open() as f:
        return json.load(f, parse_constant=refuse)


def test_write_report(tmp_path: Path) -> None:
    df, ablation = _synthetic()
    out = tmp_path / "reports"
    ev = write_report(out, df, ablation=ablation, extra={"threshold_ai": 0.7, "note": "synthetic"})
    for name in ("eval.json", "eval.md", "roc.png", "reliability.png", "score_hist.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    loaded = _strict_load(out / "eval.json")
    assert loaded == ev
    expected = json_safe(summarize(df["y"].to_numpy(), df["p"].to_numpy()))
    for key in ("auroc", "tpr_at_1fpr", "tpr_at_5fpr", "ece", "brier"):
        assert key in loaded["overall"]
    for key, value in expected.items():
        assert loaded["overall"][key] == pytest.approx(value), key
    assert loaded["overall"]["ci95"]["auroc"][0] <= loaded["overall"]["auroc"] <= loaded["overall"]["ci95"]["auroc"][1]
    for section in ("by_source", "by_domain", "by_generator", "by_variant", "by_length", "ablation", "verdicts",
                    "extra"):
        assert section in loaded, section
    assert set(loaded["ablation"]) == {"combined", "lm_only", "stats_only"}
    assert loaded["ablation"]["combined"]["auroc"] == pytest.approx(expected["auroc"])
    assert loaded["extra"] == {"threshold_ai": 0.7, "note": "synthetic"}
    assert sum(r["n"] for r in loaded["by_source"]) == len(df)
    assert [r["group"] for r in loaded["by_length"]] == [b for b in LENGTH_BUCKET_LABELS
                                                         if b in set(df["n_tokens"].map(length_bucket))]
    human_gen = next(r for r in loaded["by_generator"] if r["group"] == "human")
    assert human_gen["auroc"] is None  # single class -> null, not NaN
    assert human_gen["auroc_vs_humans"] is None
    gpt4 = next(r for r in loaded["by_generator"] if r["group"] == "gpt-4")
    vs = df[(df["generator"] == "gpt-4") | (df["y"] == 0)]
    assert gpt4["auroc_vs_humans"] == pytest.approx(auroc(vs["y"], vs["p"]))
    assert gpt4["tpr_at_1fpr_vs_humans"] == pytest.approx(tpr_at_fpr(vs["y"], vs["p"], 0.01))
    vd = loaded["verdicts"]
    assert vd["counts"]["insufficient_text"]["total"] == 7
    assert sum(c["total"] for c in vd["counts"].values()) == len(df)
    decided = df["label"].isin(["ai", "human"])
    assert vd["coverage"] == pytest.approx(decided.mean())
    truth = np.where(df["y"] == 1, "ai", "human")
    assert vd["accuracy"] == pytest.approx((df["label"][decided] == truth[decided]).mean())

    md = (out / "eval.md").read_text()
    for heading in ("## Headline", "## Ablation", "## By source", "## By domain", "## By generator", "## By variant",
                    "## By length", "## Verdicts", "## Plots", "## Extra"):
        assert heading in md, heading
    for plot in ("roc.png", "reliability.png", "score_hist.png", "lm_only", "stats_only", "uncertain",
                 "AUROC vs humans", "95% interval"):
        assert plot in md, plot


def test_write_report_unscored_rows_and_no_labels(tmp_path: Path) -> None:
    df, ablation = _synthetic(n=60, seed=1)
    df = df.drop(columns=["label", "variant"])
    df.loc[:4, "p"] = np.nan  # the headline model abstained on five texts
    ev = write_report(tmp_path, df, ablation={"lm_only": ablation["lm_only"]})
    loaded = _strict_load(tmp_path / "eval.json")
    assert loaded == ev
    assert loaded["overall"]["n"] == 55 and loaded["overall"]["n_unscored"] == 5
    assert loaded["verdicts"] == {"available": False} and loaded["by_variant"] == []
    assert set(loaded["ablation"]) == {"combined", "lm_only"}
    assert "_No verdict labels were given._" in (tmp_path / "eval.md").read_text()


def test_write_report_scores_the_texts_the_detector_answers_on_their_own(tmp_path: Path) -> None:
    """With the bundle's `min_tokens` in the report's thresholds, the report adds the headline metrics of the
    texts at or above it (the ones the detector answers) and their share of the split."""
    df, ablation = _synthetic(n=300, seed=2)
    ev = write_report(tmp_path, df, ablation=ablation, extra={"thresholds": {"min_tokens": 64}})
    long_enough = df[df["n_tokens"] >= 64]
    le = ev["long_enough"]
    assert le["min_tokens"] == 64 and le["n"] == len(long_enough)
    assert le["share_of_test"] == pytest.approx(len(long_enough) / len(df))
    assert le["auroc"] == pytest.approx(auroc(long_enough["y"], long_enough["p"]))
    assert "On the texts it answers (at least 64 tokens" in (tmp_path / "eval.md").read_text()
    assert le["ci95"]["auroc"][0] <= le["auroc"] <= le["ci95"]["auroc"][1]
    assert "long_enough" not in write_report(tmp_path / "plain", df, ablation=ablation)  # no min_tokens, no section


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_texts() -> None:
    """Each interval brackets the full-sample value, is reproducible, shrinks as the split grows, and is
    absent when a class is missing; the report's headline carries it and shows it."""
    rng = np.random.default_rng(0)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat([0, 1], n // 2)
        return y, 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.5 * y)))

    y, p = sample(400)
    ci = bootstrap_intervals(y, p, n_boot=300)
    assert set(ci) == {"auroc", "tpr_at_1fpr", "ece"}
    assert ci["auroc"][0] < auroc(y, p) < ci["auroc"][1]
    assert ci["tpr_at_1fpr"][0] <= tpr_at_fpr(y, p, 0.01) <= ci["tpr_at_1fpr"][1]
    assert bootstrap_intervals(y, p, n_boot=300) == ci
    y_big, p_big = sample(4000)
    wide, narrow = ci["auroc"], bootstrap_intervals(y_big, p_big, n_boot=300)["auroc"]
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 2
    assert bootstrap_intervals(np.zeros(10), np.full(10, 0.3)) == {}
