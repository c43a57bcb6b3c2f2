"""The training pipeline end to end on a tiny random GPT-2 and a synthetic corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from synthetic import make_corpus, three_source_prepared
from tiny_bundle import TINY_TRAIN_SIZES
from training.data import assign_splits, group_key, load_source, sample_split


def test_bundle_contents(tiny_bundle_dir: Path) -> None:
    manifest = json.loads((tiny_bundle_dir / "manifest.json").read_text())
    assert manifest["backbone"]["model_type"] == "gpt2" and len(manifest["backbone"]["weights_sha256"]) == 64
    assert manifest["features"][-1] == "classifier_logit"
    assert "n_tokens" not in manifest["features"]  # length is how a collection was built, not who wrote it
    t = manifest["thresholds"]
    assert 0.0 <= t["human"] <= t["ai"] <= 1.0 + 1e-9 and t["min_tokens"] >= 16
    # by default the calibration learns from every length (``--calibrate-on answered``: below)
    assert json.loads((tiny_bundle_dir / "combiner.json").read_text())["document"]["calibrate_from"] == 0
    assert manifest["head"]["kind"] == "probe" and manifest["precision"] in ("float32", "bfloat16")
    head = load_file(str(tiny_bundle_dir / "head.safetensors"))
    width = len(manifest["head"]["layers"]) * manifest["backbone"]["hidden_size"]
    if manifest["head"].get("experts"):  # a routed probe: one expert per training source
        assert head["experts.coef"].shape == (len(manifest["head"]["experts"]), width)
        assert head["router.coef"].shape == head["experts.coef"].shape
    else:
        assert head["probe.coef"].shape == (width,)
    assert set(manifest["data"]["licences"]) == {"synthetic"}


def test_report_written_with_held_out_metrics(tiny_bundle_dir: Path) -> None:
    reports = tiny_bundle_dir.parent / "reports"
    report = json.loads((reports / "eval.json").read_text())
    assert {"auroc", "tpr_at_1fpr", "tpr_at_5fpr", "ece", "brier"} <= set(report["overall"])
    assert report["overall"]["n"] == TINY_TRAIN_SIZES[2]
    assert {"combined", "features_only", "classifier_only"} <= set(report["ablation"])
    for plot in ("roc.png", "reliability.png", "score_hist.png"):
        assert (reports / plot).stat().st_size > 1000
    # separable synthetic data: a working pipeline must find it
    assert report["overall"]["auroc"] >= 0.9


def test_split_is_grouped_by_prompt(tmp_path: Path) -> None:
    df = load_source("synthetic", make_corpus(tmp_path, n_pairs=80).parent)
    splits = assign_splits(df, seed=3)
    per_group = pd.DataFrame({"g": df.apply(group_key, axis=1), "s": splits}).groupby("g")["s"].nunique()
    assert per_group.max() == 1
    assert set(splits) == {"train", "cal", "test"}
    sampled = sample_split(df, {"train": 40, "cal": 20, "test": 20}, seed=3)
    assert sampled.groupby(["split", "label"]).size().min() > 0


def test_loader_strips_surrounding_whitespace(tmp_path: Path) -> None:
    df = load_source("synthetic", make_corpus(tmp_path, n_pairs=10).parent)
    assert not df["text"].str.match(r"^\s").any() and not df["text"].str.contains(r"\s$").any()


def test_resume_reuses_cached_steps(tiny_bundle_dir: Path) -> None:
    run = tiny_bundle_dir.parent / "runs" / "tiny"
    report = json.loads((tiny_bundle_dir.parent / "reports" / "eval.json").read_text())
    cache = Path(report["extra"]["lm_pass_cache"])
    shards = sorted(cache.glob("shard_*.pt"))
    assert shards and (run / "split.json").exists()
    assert not cache.is_relative_to(Path(__file__).resolve().parents[1])  # outside the work tree
    stamps = [p.stat().st_mtime_ns for p in shards]
    from training.train import Config
    from training.train import run as run_pipeline

    root = tiny_bundle_dir.parent
    run_pipeline(Config(name="tiny", lm=str(root / "gpt2"), data_dir=str(root / "data"), sources=("synthetic",),
                        source_weights=(), sizes=TINY_TRAIN_SIZES, max_tokens=64,
                        runs_dir=str(root / "runs"), bundle_dir=str(root / "bundle-rerun"),
                        reports_dir=str(root / "reports2")))
    assert [p.stat().st_mtime_ns for p in shards] == stamps  # LM pass not redone


def test_fine_tuned_blocks_head_trains_ships_and_resumes(tmp_path: Path, monkeypatch) -> None:
    """``--heads blocks``: the design grid fine-tunes the top blocks, the bundle ships them (bf16) and scores
    with them, and a rerun resumes from the finished head's checkpoint instead of training again."""
    from detector import Detector
    from tiny_bundle import build_tiny_bundle

    bundle = build_tiny_bundle(tmp_path, heads=("blocks",), block_k=(1,))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["head"]["kind"] == "blocks" and manifest["head"]["k"] == 1
    assert manifest["head"]["design"].startswith("fine-tuned top 1 blocks")
    weights = load_file(str(bundle / "head.safetensors"))
    assert weights and {str(v.dtype) for v in weights.values()} == {"torch.bfloat16"}
    assert manifest["segment_features"][-1] == "classifier_logit"  # sentences get the head's own token logits

    report = json.loads((tmp_path / "reports" / "eval.json").read_text())
    assert report["overall"]["auroc"] >= 0.9  # separable synthetic data

    text = "The committee met on Tuesday to discuss the budget. " * 6
    score = Detector.load(str(bundle), dtype="float32").score(text)
    assert score.prob_ai is not None and 0.0 <= score.prob_ai <= 1.0
    assert score.features["classifier_logit"] != 0.0
    # the blocks always run in fp32, next to a bf16 backbone too (the bf16 path is forced, whatever the CPU)
    bf16 = Detector.load(str(bundle), dtype="bfloat16").score(text)
    assert bf16.prob_ai is not None and abs(bf16.prob_ai - score.prob_ai) < 0.1

    # the report scores cached states: a head shallower than the cache (k=1 of 2 here) must get the frozen block
    # in between, exactly as the detector does when it scores the text itself
    from training.evaluate import _cached_features, prepared_from_run

    data = prepared_from_run(tmp_path / "runs" / "tiny", with_token_states=True)
    det = Detector.load(str(bundle), dtype="float32")
    test = data.idx("test")[:4]
    cached = [f["classifier_logit"] for f in _cached_features(det, data)[:4]]
    live = [s.features["classifier_logit"] for s in det.score_many(data.rows["text"].iloc[test].tolist())]
    assert cached == pytest.approx(live, abs=2e-3)

    checkpoints = sorted((tmp_path / "runs" / "tiny" / "heads").glob("*.ckpt"))
    assert checkpoints
    stamps = [p.stat().st_mtime_ns for p in checkpoints]
    from training.train import Config, run

    monkeypatch.setenv("DETECTOR_DTYPE", "float32")  # the precision the bundle was built in, on every CPU
    run(Config(name="tiny", lm=str(tmp_path / "gpt2"), data_dir=str(tmp_path / "data"), sources=("synthetic",),
               source_weights=(), sizes=TINY_TRAIN_SIZES, max_tokens=64, runs_dir=str(tmp_path / "runs"),
               bundle_dir=str(tmp_path / "bundle-rerun"), reports_dir=str(tmp_path / "reports2"),
               heads=("blocks",), block_k=(1,)))
    assert [p.stat().st_mtime_ns for p in checkpoints] == stamps  # finished heads are not trained again
    again = json.loads((tmp_path / "reports2" / "eval.json").read_text())
    assert again["overall"]["auroc"] == report["overall"]["auroc"]


def test_length_aware_calibration_on_answered_texts_ships_and_scores(tmp_path: Path) -> None:
    """``--calibration platt_length --calibrate-on answered``: the bundle's document calibration reads each
    text's length and learned from texts of at least `min_tokens` (measured before the grid), and the
    detector passes the length (a short and a long text with the same raw score get different confidence)."""
    from detector import Detector
    from tiny_bundle import build_tiny_bundle

    bundle = build_tiny_bundle(tmp_path, calibration=("platt_length",), calibrate_on="answered")
    document = json.loads((bundle / "combiner.json").read_text())["document"]
    thresholds = json.loads((bundle / "manifest.json").read_text())["thresholds"]
    assert document["calibrate_from"] == thresholds["min_tokens"] >= 16
    assert "answered" in thresholds["calibrated_on"]
    calibrator = document["calibrator"]
    assert calibrator["method"] == "platt_length"  # (it falls back to platt if it would not increase everywhere)
    det = Detector.load(str(bundle), dtype="float32")
    assert det.bundle.combiner.needs_length == (calibrator["method"] == "platt_length")
    score = det.score("The committee met on Tuesday to discuss the budget. " * 6)
    assert score.prob_ai is not None and 0.0 <= score.prob_ai <= 1.0
    report = json.loads((tmp_path / "reports" / "eval.json").read_text())
    assert report["extra"]["calibration_method"] == calibrator["method"]


def test_ai_line_holds_per_source_and_the_heldout_fpr_is_counted() -> None:
    """The fold's `ai` line is the training rule (strictest 1%-FPR line over sources and lengths), and the
    generalisation table records how many held-out humans it would accuse."""
    from training.train import Prepared, add_heldout_ai_fpr, ai_line

    rng = np.random.default_rng(0)
    n = 1200
    source = np.where(np.arange(n) < 600, "A", "B")
    y = rng.integers(0, 2, n)
    p = np.clip(rng.uniform(0, 0.8, n) + 0.2 * y + 0.15 * (source == "B"), 0, 1)  # B's humans score higher
    rows = pd.DataFrame({"source": source, "n_tokens": rng.integers(64, 256, n), "split": "train"})
    data = Prepared(rows, [], [], np.zeros((n, 1)), np.zeros((n, 1, 1)), y, (0,))
    fit = np.arange(n)
    t = ai_line(data, fit, p)
    for s in ("A", "B"):
        humans = (y == 0) & (source == s)
        assert np.mean(p[humans] >= t) <= 0.01
    assert np.mean(p[(y == 0) & (source == "A")] >= t) < 0.01  # the stricter source sets the line

    table = {"A": {"combined_w0.5": {"auroc": 0.9, "n": 10}}}
    add_heldout_ai_fpr(table, {("A", "combined_w0.5"): (3, 150), ("missing", "combined_w0.5"): (1, 1)})
    assert table["A"]["combined_w0.5"] == {"auroc": 0.9, "n": 10, "ai_flagged": 3, "ai_humans": 150, "ai_fpr": 0.02}
    from training.report import render_generalization

    table["A"]["best_zero_shot"] = {"feature": "mean_logprob", "auroc": 0.8, "n": 10}
    table["A"]["combined_w0.5"].update(tpr_at_1fpr=0.3, ece=0.05)
    md = "\n".join(render_generalization({"models": ["combined_w0.5"], "leave_one_source_out_table": table}))
    assert "held-out humans called ai" in md and "3/150" in md
    # beside each held-out AUROC: the shipped model's AUROC on that source's own test texts (it trained on them)
    from training.report import trained_with_auroc

    ev = {"by_source": [{"group": "A", "auroc": 0.97}, {"group": "B", "auroc": float("nan")}]}
    assert trained_with_auroc(ev) == {"A": 0.97}
    md = "\n".join(render_generalization({"models": ["combined_w0.5"], "leave_one_source_out_table": table},
                                          trained_with_auroc(ev)))
    assert "trained with it" in md and "| A | 10 | 0.900 |" in md and md.count("0.970") == 2  # row and mean


def test_design_choice_puts_heldout_humans_before_auroc() -> None:
    """A design whose fold `ai` lines accuse more than 1.5% of some held-out source's humans is not shipped
    while a guard-holding design that accuses fewer exists, however much better its mean AUROC."""
    from training.generalization import guard_check
    from training.train import MAX_HELDOUT_AI_FPR, choose_design

    def table(auroc: float, fpr: float) -> dict:
        return {s: {"m": {"auroc": auroc, "ai_fpr": fpr if s == "A" else 0.0},
                    "best_zero_shot": {"auroc": 0.6}} for s in ("A", "B")}

    sharp, safe, unsafe_low = (guard_check(table(0.80, 0.019), "m"), guard_check(table(0.75, 0.004), "m"),
                               guard_check(table(0.70, 0.016), "m"))
    assert sharp["worst_ai_fpr"] == 0.019 and sharp["worst_ai_fpr"] > MAX_HELDOUT_AI_FPR
    assert choose_design({"sharp": sharp, "safe": safe, "unsafe_low": unsafe_low}) == "safe"
    # none within the bar: the one accusing fewest, not the one with the best AUROC
    assert choose_design({"sharp": sharp, "unsafe_low": unsafe_low}) == "unsafe_low"
    # the guard still comes first: a design below its zero-shot evidence is never chosen while another holds
    below = guard_check(table(0.55, 0.0), "m")
    assert below["holds"] is False and choose_design({"below": below, "sharp": sharp}) == "sharp"


def test_unseen_source_line_is_nested_inside_each_fold_and_never_sees_test_rows() -> None:
    """Leave-one-source-out folds set their `ai` line like the shipped bundle: the in-distribution line, raised
    to where each training source's humans stay under 1% when scored by a model fit without that source
    (folds nested inside the fold's own training sources). That line can only accuse fewer held-out humans,
    and the shipped line's unseen-source part is set from non-test rows only."""
    from training.train import Config, ProbeDesign, generalization, unseen_source_line

    data = three_source_prepared()
    design = ProbeDesign(0.01, (0,), "best")
    plain = generalization(Config(), data, design, (0.5,), with_logo=False, unseen_lines=False)
    nested = generalization(Config(), data, design, (0.5,), with_logo=False)
    for source in ("A", "B", "C"):
        p_row, n_row = (g["leave_one_source_out_table"][source]["combined_w0.5"] for g in (plain, nested))
        assert n_row["ai_humans"] == p_row["ai_humans"] == 150
        assert n_row["ai_flagged"] <= p_row["ai_flagged"]
        assert n_row["auroc"] == p_row["auroc"]  # the line moves, the scores do not
    unseen = nested["_unseen_p"][0.5]
    assert sorted(unseen) == ["A", "B", "C"] and all(len(v) == 120 for v in unseen.values())  # no test rows
    assert plain["_unseen_p"][0.5] == {}
    line = unseen_source_line(unseen)
    assert all(np.mean(v >= line) <= 0.01 for v in unseen.values())
    assert unseen_source_line({"tiny": np.ones(5)}) == 0.0  # too few humans to measure 1%


def test_folds_calibrate_on_and_guard_only_the_texts_the_detector_answers() -> None:
    """With ``min_tokens``, a fold's calibrators learn from its answered fit rows, and its `ai` line and the
    held-out humans it is asked to spare are the answered ones (a shorter text only gets
    `insufficient_text`). Ranking does not change: the same AUROC."""
    from training.train import Config, ProbeDesign, generalization

    data = three_source_prepared()
    design = ProbeDesign(0.01, (0,), "best")
    every = generalization(Config(), data, design, (0.5,), with_logo=False)
    answered = generalization(Config(), data, design, (0.5,), with_logo=False, min_tokens=128)
    n, y, src = data.n_tokens, data.y, data.rows["source"].to_numpy()
    not_test = data.rows["split"].to_numpy() != "test"
    for source in ("A", "B", "C"):
        row_all = every["leave_one_source_out_table"][source]["combined_w0.5"]
        row = answered["leave_one_source_out_table"][source]["combined_w0.5"]
        assert row_all["ai_humans"] == 150
        assert row["ai_humans"] == int(np.sum((src == source) & (y == 0) & (n >= 128)))
        assert row["auroc"] == pytest.approx(row_all["auroc"], abs=0.01)
        kept = answered["_unseen_p"][0.5][source]
        assert len(kept) == int(np.sum((src == source) & (y == 0) & (n >= 128) & not_test))
    fold_fits = [v for k, v in data.head_fits.items() if k[0] == "fold" and k[3] == 128]
    assert fold_fits and all(m.calibrate_from == 128 and m.calibrated_on_ < len(m.oof_proba_)
                             for fit in fold_fits for m in fit[2:])


def test_fold_fits_are_shared_between_the_grid_checks_and_the_final_tables(monkeypatch) -> None:
    """The design grid's verdict check and the final tables fit the same folds (nested ones included): the
    second call fits no combiner again and gives the same tables."""
    import training.design_grid as grid
    from training.train import Config, ProbeDesign

    data = three_source_prepared()
    design = ProbeDesign(0.01, (0,), "best")
    calls = []
    real = grid.fit_combiners
    monkeypatch.setattr(grid, "fit_combiners", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = grid.generalization(Config(), data, design, (0.5,), with_logo=False)
    n_fits = len(calls)
    # three held-out sources, each with two nested inner folds; an inner fold fits on one source alone, and the
    # fold holding out A fits "without B" on the same rows as the fold holding out B fits "without A"
    assert n_fits == 3 + 3
    again = grid.generalization(Config(), data, design, (0.5, 1.0), with_logo=False)
    assert len(calls) == n_fits
    for source, row in first["leave_one_source_out_table"].items():
        assert again["leave_one_source_out_table"][source]["combined_w0.5"] == row["combined_w0.5"]
    grid.generalization(Config(), data, design, (0.5,), with_logo=False, calibration="platt_length")
    assert len(calls) == 2 * n_fits  # another calibration is another fit


@pytest.mark.parametrize("k", [1, 2])
def test_head_trainer_runs_with_and_without_frozen_blocks_in_between(tiny_lm, k: int) -> None:
    """A head as deep as the cache (k = 2 of 2) reads the cached state itself; a shallower one (k = 1) runs the
    frozen block in between first. Both train, and predict gives the logits their own forward pass gives."""
    import torch

    from training.train_head import HeadTrainer, frozen_bridge

    torch.manual_seed(0)
    hiddens = [torch.randn(n, tiny_lm.model.config.n_embd) for n in (5, 9, 7, 6)]
    trainer = HeadTrainer(tiny_lm.model, k, 2, epochs=1, batch_size=2).fit(hiddens, [0, 1, 0, 1])
    assert len(trainer.history_) == 1 and np.isfinite(trainer.history_[0]["train_loss"])
    docs, tokens = trainer.predict(hiddens)
    bridge = frozen_bridge(tiny_lm.model, k, 2)
    assert (bridge is None) == (k == 2)
    with torch.no_grad():
        x = hiddens[0][None]
        mask = torch.ones(1, x.shape[1], dtype=torch.long)
        doc, _ = trainer.head_(x if bridge is None else bridge(x, mask), mask)
    assert docs[0] == pytest.approx(float(doc[0]), abs=1e-4) and len(tokens[0]) == 4


def test_excluded_zero_shot_features_stay_out_of_every_combiner() -> None:
    """``--exclude-features`` (an ablation): the feature is in no combiner the folds or the bundle fit."""
    from training.train import (
        COMBINER_FEATURES,
        NOT_SHIPPED,
        Config,
        ProbeDesign,
        fit_combiners,
        generalization,
        parse_args,
    )

    assert parse_args(["--exclude-features", "chars_per_token"]).exclude_features == ("chars_per_token",)
    assert parse_args([]).exclude_features == NOT_SHIPPED  # the shipped bundles' feature set reproduces them
    assert parse_args(["--exclude-features"]).exclude_features == ()  # every feature
    data = three_source_prepared()
    gone = COMBINER_FEATURES[-1]
    data.features, data.Z = COMBINER_FEATURES[:-1], data.Z[:, :-1]
    gen = generalization(Config(), data, ProbeDesign(0.01, (0,), "all"), (0.5,), with_logo=False,
                         unseen_lines=False)
    assert sorted(gen["leave_one_source_out_table"]) == ["A", "B", "C"]
    fit = np.flatnonzero(data.rows["split"].to_numpy() != "test")
    full, zero_shot, single = fit_combiners(data, np.zeros(len(data.y)), fit, 0)
    assert gone not in full.feature_names and gone not in zero_shot.feature_names
    assert full.feature_names[-1] == "classifier_logit" and len(zero_shot.feature_names) == len(data.features)


def test_routed_probe_bundle_ships_and_scores_as_trained(tmp_path: Path, monkeypatch) -> None:
    """A routed probe (one expert per training source + a source router) goes through the whole pipeline: the
    bundle names its experts, loads as a ``RoutedProbe``, and the detector's live head logit is the one the
    report computed from the cached pass."""
    import training.designs
    import training.train as train
    from conftest import build_tiny_gpt2
    from detector import Detector
    from detector.probe import RoutedProbe
    from training.evaluate import _cached_features, prepared_from_run

    monkeypatch.setattr(training.designs, "ROUTED_C_GRID", (0.01,))  # one C: a smaller grid
    monkeypatch.setenv("DETECTOR_DTYPE", "float32")
    lm_dir = build_tiny_gpt2(tmp_path / "gpt2")
    for seed, source in enumerate(("synth_a", "synth_b")):
        make_corpus(tmp_path / "data", n_pairs=60, seed=seed, source=source)
    train.run(train.Config(name="tiny", lm=str(lm_dir), data_dir=str(tmp_path / "data"),
                           sources=("synth_a", "synth_b"), source_weights=(), sizes=(100, 40, 40), max_tokens=64,
                           runs_dir=str(tmp_path / "runs"), bundle_dir=str(tmp_path / "bundle"),
                           reports_dir=str(tmp_path / "reports"), calibration=("platt",), heads=("routed",)))
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["head"]["design"].startswith("routed probe")
    assert sorted(manifest["head"]["experts"]) == ["synth_a", "synth_b"]
    det = Detector.load(str(tmp_path / "bundle"), dtype="float32")
    assert isinstance(det.head, RoutedProbe)
    data = prepared_from_run(tmp_path / "runs" / "tiny")
    test = data.idx("test")[:4]
    cached = [f["classifier_logit"] for f in _cached_features(det, data)[:4]]
    live = [s.features["classifier_logit"] for s in det.score_many(data.rows["text"].iloc[test].tolist())]
    assert cached == pytest.approx(live, abs=2e-3)
