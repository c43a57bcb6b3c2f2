"""The generated model card states the bundle's lines, licences and every leave-one-source-out number."""

from __future__ import annotations

import copy

from detector.bundle import Bundle
from training.model_card import model_card


def _eval() -> dict:
    section = {"n": 100, "auroc": 0.9, "tpr_at_1fpr": 0.5, "tpr_at_5fpr": 0.6, "ece": 0.04, "brier": 0.1,
               "ci95": {"auroc": [0.85, 0.95], "tpr_at_1fpr": [0.4, 0.6], "ece": [0.03, 0.05]}}
    fold = {"auroc": 0.812, "ece": 0.071, "ai_flagged": 1, "ai_humans": 150, "ai_tpr": 0.234}
    return {"overall": section, "long_enough": {**section, "n": 90}, "by_source": [{"group": "A", "n": 50,
                                                                                   "auroc": 0.91, "tpr_at_1fpr": 0.4}],
            "leave_one_source_out": {"A": fold, "B": {**fold, "auroc": 0.7}},
            "leave_one_source_out_pooled": {**fold, "ai_flagged": 2, "ai_humans": 300},
            "n": {"A": {"human": 150, "ai": 150}, "B": {"human": 150, "ai": 150}},
            "n_fit": {"A": {"human": 400, "ai": 390}, "B": {"human": 380, "ai": 400}},
            "in_distribution": {"n_fit": 1570}}


def test_card_carries_lines_licences_and_held_out_numbers(tiny_bundle_dir) -> None:
    bundle = Bundle.load(tiny_bundle_dir)
    bundle.manifest = copy.deepcopy(bundle.manifest)
    bundle.manifest["head"] = {"kind": "probe", "layers": [2], "C": 0.002}
    bundle.manifest["data"]["licences"] = {"A": "CC BY 3.0 (test)", "B": "no licence stated (test)"}
    card = model_card(bundle, _eval())
    t = bundle.manifest["thresholds"]
    assert f"`ai` at P(AI) ≥ {t['ai']:.3f}" in card and f"below {t['min_tokens']} tokens" in card
    assert "CC BY 3.0 (test)" in card and "no licence stated (test)" in card
    assert "| A | 0.812 | 0.071 | 1 of 150 | 0.234 |" in card
    assert "| all six | 0.756 | 0.071 | 2 of 300 | 0.234 |" in card  # the mean of the folds' AUROC
    assert bundle.manifest["backbone"]["identity"] in card
    assert "| 400 / 390 | 150 / 150 | CC BY 3.0 (test) |" in card and "fit on 1,570 texts" in card


def test_the_card_names_the_adapters_only_when_the_combiner_reads_their_fork() -> None:
    from training.model_card import _reproduce

    assert not any("ddl_loso" in line for line in _reproduce({}))
    assert "--no-ddl" in _reproduce({})[0]
    with_fork = _reproduce({"tuned_discrepancy": {"training": {"pairs": 500, "k": 30, "epochs": 5, "epoch": 1}}})
    assert with_fork[0].startswith("python -m training.ddl_loso --pairs 500 --k 30 --epochs 5 --until-epoch 1")
