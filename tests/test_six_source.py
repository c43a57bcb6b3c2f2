"""The six-source tables: out-of-source calibration and lines never see the fold's own texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training import six_source


def _table(seed: int = 0, per: int = 120) -> tuple[pd.DataFrame, list[dict]]:
    """Three sources whose AI texts sit higher on a shared signal, each source shifted differently."""
    rng = np.random.default_rng(seed)
    rows, records = [], []
    for s, shift in (("A", 0.0), ("B", 0.7), ("C", -0.5)):
        for label in ("human", "ai"):
            for i in range(per):
                y = label == "ai"
                signal = rng.normal(1.2 * y + shift, 1.0)
                n = int(rng.integers(40, 300))
                rows.append({"source": s, "label": label, "y": int(y), "domain": f"{s}-d{i % 2}",
                             "variant": "rewrite" if y and i % 3 == 0 else "plain", "generator": f"g{i % 2}" if y
                             else "human", "split": "test" if i % 2 else "cal", "n_tokens": n})
                feats = {name: float(rng.normal()) for name in six_source.ZERO_SHOT}
                feats["fast_detectgpt"] = signal
                records.append({"features": feats, "n_tokens": n,
                                "pooled": rng.normal(size=(4, 6)).astype(np.float32),
                                "witness_residual": rng.normal(size=8) * n,
                                "witness_cov": np.abs(rng.normal(size=15)) * n,
                                "tuned": {k: signal + rng.normal(0, 0.5) for k in ("A", "B", "C", "all")}})
    return pd.DataFrame(rows), records


def test_a_folds_probabilities_do_not_depend_on_its_own_labels() -> None:
    table, _ = _table()
    z = np.random.default_rng(1).normal(size=len(table)) + table["y"].to_numpy()
    before = six_source.out_of_source(table, z, min_tokens=64)
    flipped = table.copy()
    mine = flipped["source"] == "A"
    flipped.loc[mine, "y"] = 1 - flipped.loc[mine, "y"]
    after = six_source.out_of_source(flipped, z, min_tokens=64)
    assert np.allclose(before["p"][mine], after["p"][mine])
    assert before["lines"]["A"] == after["lines"]["A"]


def test_fold_lines_keep_the_other_sources_humans_under_one_percent() -> None:
    table, _ = _table()
    z = np.random.default_rng(2).normal(size=len(table)) + 2 * table["y"].to_numpy()
    out = six_source.out_of_source(table, z, min_tokens=64)
    src, y, n = table["source"].to_numpy(), table["y"].to_numpy(), table["n_tokens"].to_numpy()
    for held, line in out["lines"].items():
        for other in set(src) - {held}:
            m = (src == other) & (y == 0) & (n >= 64)
            # the other source's humans under *this* fold's calibrator
            cal = six_source.Calibrator("platt").fit(z[src != held], y[src != held], n[src != held])
            p_other = cal.transform(z[m], n[m])
            assert np.mean(p_other >= line["ai"]) <= 0.01
        assert line["human"] <= line["ai"]


def test_analysis_reports_every_table() -> None:
    table, records = _table()
    report = six_source.analyse(table, records, min_tokens=64)
    assert set(report["leave_one_source_out"]) == {"A", "B", "C"}
    for v in report["leave_one_source_out"].values():
        assert {"auroc", "tpr_at_1fpr", "ece", "n", "ai_fpr", "ai_tpr"} <= set(v)
    assert {"auroc", "ece", "ai_fpr", "ai_tpr"} <= set(report["leave_one_source_out_pooled"])
    assert all({"n_human", "ai_fpr"} <= set(v) for v in report["leave_one_source_out_domains"].values())
    blends = {f"{name} blend {w}" for name in six_source.BLENDED_SETS for w in six_source.BLEND_WEIGHTS}
    assert set(report["ablation"]) == set(six_source.EVIDENCE_SETS) | {"best_zero_shot"} | blends
    assert report["chosen"] in report["guard_holds"] and report["guard_holds"][report["chosen"]]
    # the signal the sources share carries: the chosen evidence ranks every held-out source well above chance
    assert min(v["auroc"] for v in report["leave_one_source_out"].values()) > 0.7
    assert "A/rewrite" in report["by_variant"] and report["in_distribution"]["n"] > 0


def test_shipped_lines_spare_every_sources_held_out_humans() -> None:
    from training.ship_evidence import shipped_model

    table, records = _table()
    report = six_source.analyse(table, records, min_tokens=64)
    z = report["_z"]
    got = six_source.Collected(table, records, lm=None, cfg=None, df=None)
    combiner, _, thresholds, probs = shipped_model(got, report["chosen"], z, min_tokens=64)
    p = combiner.calibrator_.transform(z, table["n_tokens"].to_numpy())
    src, y, n = table["source"].to_numpy(), table["y"].to_numpy(), table["n_tokens"].to_numpy()
    for s in set(src):
        humans = (src == s) & (y == 0) & (n >= 64)
        assert np.mean(p[humans] >= thresholds["ai"]) <= 0.01
    assert thresholds["human"] <= thresholds["ai"] and "source=A" in probs["ai_line_groups"]
    # the calibration is the out-of-source one: fit on the held-out scores, it is close to their label rate
    assert abs(np.mean(p) - np.mean(y)) < 0.05


def _with_train_pass() -> tuple[pd.DataFrame, list[dict]]:
    table, records = _table()
    train, train_records = _table(seed=5)
    train["split"] = "train"
    for r in train_records:  # what a pass without forks or witness moments leaves
        r["tuned"], r["witness_residual"], r["witness_cov"] = {}, np.zeros(8), np.zeros(15)
    return six_source.join_train(table, records, train, train_records)


def test_folds_fit_on_the_train_pass_and_score_only_the_sample() -> None:
    both, records = _with_train_pass()
    fit_row, test_row = six_source.roles(both)
    assert fit_row.sum() == test_row.sum() == len(both) // 2 and not (fit_row & test_row).any()
    report = six_source.analyse(both, records, min_tokens=64, sets=six_source.TRAIN_FIT_SETS)
    assert sum(v["n"] for v in report["leave_one_source_out"].values()) == test_row.sum()
    assert report["in_distribution"]["n_fit"] == fit_row.sum()
    assert report["n_fit_rows"] == fit_row.sum()
    assert min(v["auroc"] for v in report["leave_one_source_out"].values()) > 0.7
    # a fold's scores do not depend on the held-out source's train texts: drop them, nothing moves
    keep = ~(fit_row & (both["source"].to_numpy() == "A"))
    kept = both[keep].reset_index(drop=True)
    a = six_source.fold_scores(both, records, "A", sets=six_source.TRAIN_FIT_SETS)
    b = six_source.fold_scores(kept, [r for r, k in zip(records, keep) if k], "A", sets=six_source.TRAIN_FIT_SETS)
    assert np.allclose(a["zero_shot+probe blend 0.5"]["z"], b["zero_shot+probe blend 0.5"]["z"])


def _shipped_beside_measured(name: str):
    """The combiner ``ship_evidence`` writes for evidence set ``name`` (fit on every source's fit rows), the
    scored rows' columns and lengths, and the raw scores the analysis measured for those rows."""
    from training.ship_evidence import shipped_combiner

    both, records = _with_train_pass()
    y = both["y"].to_numpy()
    fit, rows = six_source.fit_rows(both), np.flatnonzero(six_source.roles(both)[1])
    ev = six_source.FoldEvidence(both, records, "all", fit)
    X = np.column_stack([ev.columns[c] for c in six_source.EVIDENCE_SETS[name.partition(" blend ")[0]]])
    n = both["n_tokens"].to_numpy()
    return shipped_combiner(ev, name, y, fit), X[rows], n[rows], six_source.set_scores(ev, name, y, fit, rows)


def test_a_shipped_blend_is_the_measured_blend() -> None:
    """What ship_evidence writes (one linear model, ``CalibratedCombiner.blend``) scores as the analysis did."""
    combiner, X, _, measured = _shipped_beside_measured("zero_shot+probe blend 0.25")
    assert np.allclose(combiner.decision_function(X), measured)


def test_a_shipped_length_sloped_combiner_is_the_measured_one() -> None:
    """A set whose weights move with length ships as one ``CalibratedCombiner(length_slopes=True)`` that scores
    as the analysis measured it, and it reads each text's length."""
    combiner, X, n, measured = _shipped_beside_measured("zero_shot+probe by length")
    assert combiner.needs_length and len(combiner.coef_) == 2 * X.shape[1]
    assert np.allclose(combiner.decision_function(X, n), measured)
    with pytest.raises(ValueError, match="n_tokens"):
        combiner.decision_function(X)


def test_probe_grid_picks_a_guarded_setting_from_the_table() -> None:
    both, records = _with_train_pass()
    grid = (six_source.ProbeSetting((2,), 0.002), six_source.ProbeSetting((0, 1, 2, 3), 0.0005))
    chosen, table, scores = six_source.probe_grid(both, records, grid=grid)
    assert chosen in grid and set(table) == {str(g) for g in grid}
    best = max((row[n]["mean_auroc"], key) for key, row in table.items() for n in row if row[n]["guard"])
    assert str(chosen) == best[1]
    # the in-distribution AUROC beside each row is measured: the shared signal ranks the test split, the probe's
    # noise states alone do not
    assert all(row["zero_shot+probe"]["in_distribution_auroc"] > 0.7 for row in table.values())
    assert all(abs(row["probe"]["in_distribution_auroc"] - 0.5) < 0.1 for row in table.values())
    assert chosen.layers == tuple(six_source.POOLED_LAYERS[d] for d in chosen.depths)
    again = six_source.held_out_scores(both, records, six_source.TRAIN_FIT_SETS, chosen)[0]  # what analyse reuses
    assert all(np.allclose(scores[0][n], again[n]) for n in again)


def test_model_worded_humans_are_left_out_of_both_sides() -> None:
    df = pd.DataFrame({"label": ["human", "human", "human", "ai", "human"],
                       "variant": [None, "paraphrase_polish_human", "adversarial_word_human", "paraphrase_polish_llm",
                                   "paraphrase_dipper_llm"],
                       "source": ["DetectRL"] * 5, "split": ["test"] * 5, "text": list("abcde")})
    kept = six_source.usable_rows(df)
    assert kept["text"].tolist() == ["a", "c", "d"]  # typo'd human text stays human; the model's rewording goes
    assert set(six_source.sample_rows(df, 10)["text"]) == {"a", "c", "d"}


def test_lines_tighten_only_when_a_held_out_source_needs_it(monkeypatch) -> None:
    """The loosest line target whose fold lines keep every held-out source's humans at 1% is used; when none
    does, the strictest."""
    def fake(fpr_at: dict):
        def evaluate_set(table, z, min_tokens, method="platt", target=0.01):
            return {"line_target": target, "leave_one_source_out": {"A": {"ai_fpr": fpr_at[target]},
                                                                    "B": {"ai_fpr": None}}}
        return evaluate_set

    loose, strict = six_source.LINE_TARGETS[0], six_source.LINE_TARGETS[-1]
    for fpr_at, expected in (({loose: 0.01, strict: 0.0}, loose), ({loose: 0.02, strict: 0.0}, strict),
                             ({loose: 0.03, strict: 0.02}, strict)):
        monkeypatch.setattr(six_source, "evaluate_set", fake(fpr_at))
        assert six_source.evaluate_lines(None, None, 64)["line_target"] == expected


def test_feature_auroc_reads_only_the_scored_texts_per_source() -> None:
    """The per-feature table: the planted signal separates in every source, noise does not, and the train
    pass's rows (fit rows) are not counted."""
    both, records = _with_train_pass()
    table = six_source.feature_auroc_by_source(both, records)
    assert set(table) == set(six_source.ZERO_SHOT) and set(table["fast_detectgpt"]) == {"A", "B", "C"}
    assert min(table["fast_detectgpt"].values()) > 0.7
    assert abs(table["perplexity"]["A"] - 0.5) < 0.15
    scored = six_source.roles(both)[1]
    sample = both[scored].reset_index(drop=True)
    assert six_source.feature_auroc_by_source(sample, [r for r, k in zip(records, scored) if k]) == table


def test_tuned_evidence_is_stacked_on_the_sampled_texts_of_the_training_sources() -> None:
    """With a fork-free train pass joined, a set reading the tuned discrepancy fits its combiner on the sampled
    texts of the fold's training sources (the only rows the forks scored), over the train-pass probe: the held-out
    source's labels never reach its fold, and the tuned signal carries the table."""
    both, records = _with_train_pass()
    src = both["source"].to_numpy()
    fit_row, scored = six_source.roles(both)
    fit, sampled = np.flatnonzero(fit_row & (src != "A")), np.flatnonzero(scored & (src != "A"))
    assert list(six_source.combiner_rows(both, "zero_shot+ddl+probe", fit, sampled)) == list(sampled)
    assert list(six_source.combiner_rows(both, "zero_shot+probe", fit, sampled)) == list(fit)
    alone, _ = _table()  # no train pass: every set fits where it always did
    every = np.arange(len(alone))
    assert list(six_source.combiner_rows(alone, "ddl", every, every[:3])) == list(every)
    sets = ("zero_shot+ddl+probe", "ddl")
    before = six_source.fold_scores(both, records, "A", sets=sets)
    flipped = both.copy()
    mine = (flipped["source"] == "A") & scored
    flipped.loc[mine, "y"] = 1 - flipped.loc[mine, "y"]
    after = six_source.fold_scores(flipped, records, "A", sets=sets)
    for name in (*sets, "zero_shot+ddl+probe blend 0.5"):
        assert np.allclose(before[name]["z"], after[name]["z"])
    report = six_source.analyse(both, records, min_tokens=64, sets=(*six_source.TRAIN_FIT_SETS, *sets))
    assert min(report["ablation"][name]["mean_auroc"] for name in sets) > 0.7
    # over every source (in distribution, shipped), a stacked combiner fits on the scored cal-split texts only
    split = both["split"].to_numpy()
    stacked_rows = six_source.all_source_rows(both, "zero_shot+ddl+probe")
    assert list(stacked_rows) == list(np.flatnonzero(scored & (split == "cal")))
    assert list(six_source.all_source_rows(both, "zero_shot+probe")) == list(six_source.fit_rows(both))
    cal = six_source.Calibrator("platt").fit(np.linspace(-2, 2, 40), np.tile([0, 1], 20), np.full(40, 200.0))
    ind = six_source.in_distribution(both, records, "zero_shot+ddl+probe", cal)
    assert ind["n_fit"] == int((scored & (split == "cal")).sum()) and ind["auroc"] > 0.7
    assert ind["n"] == int((scored & (split == "test")).sum())


def test_a_fold_drops_the_rows_built_on_the_held_out_sources_texts() -> None:
    """Continuations of source A's human prefixes (``training.self_continuation``) are A's text: the fold holding A
    out must score exactly as if they were never made, while the other folds fit on them."""
    both, records = _with_train_pass()
    extra, extra_records = _table(seed=9, per=30)
    extra = extra.assign(split="train", origin=extra["source"], source="self_continuation")
    for r in extra_records:
        r["tuned"], r["witness_residual"], r["witness_cov"] = {}, np.zeros(8), np.zeros(15)
    grown, _ = six_source.join_train(both[both["role"] == "sample"].drop(columns="role"),
                                     records[: int((both["role"] == "sample").sum())],
                                     pd.concat([both[both["role"] == "train"].drop(columns="role"), extra]),
                                     [*records[int((both["role"] == "sample").sum()):], *extra_records])
    grown_records = [*records, *extra_records]
    assert (six_source.origins(grown)[: len(both)] == both["source"].to_numpy()).all()
    drop_a = ~((grown["source"] == "self_continuation") & (grown["origin"] == "A")).to_numpy()
    a = six_source.fold_scores(grown, grown_records, "A", sets=six_source.TRAIN_FIT_SETS)
    b = six_source.fold_scores(grown[drop_a].reset_index(drop=True),
                               [r for r, k in zip(grown_records, drop_a) if k], "A", sets=six_source.TRAIN_FIT_SETS)
    assert np.allclose(a["zero_shot"]["z"], b["zero_shot"]["z"])
    c = six_source.fold_scores(grown, grown_records, "B", sets=six_source.TRAIN_FIT_SETS)
    d = six_source.fold_scores(both, records, "B", sets=six_source.TRAIN_FIT_SETS)
    assert not np.allclose(c["zero_shot"]["z"], d["zero_shot"]["z"])  # the B fold does fit on them


def test_continuations_the_forks_scored_join_every_stacked_fit_but_their_own_origins_fold() -> None:
    """Rows of role "stack" (the backbone's continuations, scored by every fold's fork) are fit rows for the probe
    and the combiners, and stacked combiners fit on them beside the sampled texts, except in the fold holding
    out the source their prefix came from."""
    both, records = _with_train_pass()
    extra, extra_records = _table(seed=11, per=20)
    extra = extra.drop(columns="n_tokens").assign(split="train", origin=extra["source"], source="self_continuation")
    grown, grown_records = six_source.join_stack(both, records, extra, extra_records)
    fit_row, scored = six_source.roles(grown)
    stack = (grown["role"] == "stack").to_numpy()
    assert fit_row[stack].all() and not scored[stack].any()
    from_a = stack & (grown["origin"] == "A").to_numpy()
    assert not (six_source.stack_rows(grown, "A") & from_a).any()
    assert (six_source.stack_rows(grown, "B") == (stack & (grown["origin"] != "B").to_numpy())).all()
    assert (six_source.stack_rows(grown) == stack).all()
    split = grown["split"].to_numpy()
    assert list(six_source.all_source_rows(grown, "zero_shot+ddl+probe")) == \
        list(np.flatnonzero((scored & (split == "cal")) | stack))
    # the fold holding A out scores exactly as if A's continuations had never been made
    sets = ("zero_shot+ddl+probe", "zero_shot+probe")
    keep = ~from_a
    a = six_source.fold_scores(grown, grown_records, "A", sets=sets)
    b = six_source.fold_scores(grown[keep].reset_index(drop=True), [r for r, k in zip(grown_records, keep) if k],
                               "A", sets=sets)
    for name in sets:
        assert np.allclose(a[name]["z"], b[name]["z"])
    c = six_source.fold_scores(grown, grown_records, "B", sets=sets)
    d = six_source.fold_scores(both, records, "B", sets=sets)
    assert not np.allclose(c["zero_shot+ddl+probe"]["z"], d["zero_shot+ddl+probe"]["z"])


def test_a_folds_auroc_is_its_own_ranking_whatever_the_other_folds_calibration() -> None:
    """Per held-out source, AUROC and TPR come from the fold's raw scores: a calibration line fit on other folds
    (here dominated by one fold whose scores run the other way on a far larger scale) must not flip them."""
    table, _ = _table()
    rng = np.random.default_rng(3)
    y, src = table["y"].to_numpy(), table["source"].to_numpy()
    z = rng.normal(size=len(table)) + 1.5 * y
    z[src == "C"] = -50.0 * z[src == "C"]
    out = six_source.evaluate_set(table, z, min_tokens=64)
    for s in ("A", "B", "C"):
        m = src == s
        assert out["leave_one_source_out"][s]["auroc"] == pytest.approx(six_source.auroc(y[m], six_source.rank01(z[m])))
    assert out["leave_one_source_out"]["A"]["auroc"] > 0.75


def test_without_adapters_only_the_sets_that_need_none_are_measured_and_reported(tmp_path) -> None:
    table, records = _table()
    for r in records:
        r["tuned"] = {}  # a pass with no fork (--no-ddl)
    sets = six_source.ddl_free(tuple(six_source.EVIDENCE_SETS))
    assert "zero_shot+probe" in sets and not any("ddl" in s for s in sets)
    report = six_source.analyse(table, records, min_tokens=64, sets=sets)
    assert not any("ddl" in name for name in report["ablation"])
    assert np.isfinite([v["auroc"] for v in report["leave_one_source_out"].values()]).all()
    report.pop("_z")
    report.update(command="python -m training.six_source --no-ddl", cpu="test", backbone="tiny", precision="float32",
                  seconds=1.0, setting={"per_label": 120, "ddl": None})
    six_source.write_report(tmp_path / "r", report)
    assert "DDL adapters: none" in (tmp_path / "r.md").read_text()
