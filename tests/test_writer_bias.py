"""The writer-bias report: a fake clone of the Liang et al. layout, scored by the tiny bundle."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from detector.combiner import displayed_probability
from synthetic import ai_text, human_text
from training import writer_bias


def _write_set(root: Path, top: str, group: str, name: str, texts: list[str]) -> None:
    folder = root / top / group / name
    folder.mkdir(parents=True)
    (folder / "data.json").write_text(json.dumps([{"document": t} for t in texts], indent=4))


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    rng = random.Random(3)
    root = tmp_path / "ChatGPT-Detector-Bias"
    _write_set(root, "Data_and_Results", "Human_Data", "TOEFL_real_4",
               [human_text(rng), human_text(rng), "Too short.", human_text(rng) + " " + human_text(rng)])
    _write_set(root, "Data_and_Results", "GPT_Data", "CS224N_gpt3_2", [ai_text(rng), ai_text(rng)])
    # the repository's older ``data/`` copy of a set already read from Data_and_Results is not scored twice
    _write_set(root, "data", "human_data", "TOEFL_real_4", ["ignored"])
    _write_set(root, "data", "human_data", "TOEFL_gpt4polished_1", [human_text(rng)])
    return root


def test_sets_are_found_once_and_named_by_writer(clone: Path) -> None:
    sets = writer_bias.load_sets(clone)
    assert sorted(sets) == ["CS224N_gpt3_2", "TOEFL_gpt4polished_1", "TOEFL_real_4"]
    assert len(sets["TOEFL_real_4"]) == 4
    assert writer_bias.writer_of("TOEFL_real_91") == "non-native (TOEFL)"
    assert writer_bias.writer_of("TOEFL_gpt4polished_91") == "non-native, GPT-4-polished"
    assert writer_bias.writer_of("CS224N_gpt3PromptEng_145").startswith("AI (GPT-3.5, self-edited")
    assert writer_bias.writer_of("Something_else") == "unknown"


def test_a_folder_without_the_layout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ChatGPT-Detector-Bias"):
        writer_bias.load_sets(tmp_path)


def test_report_counts_every_text_and_the_diagnostic_ignores_only_the_length_rule(tiny_detector, clone: Path) -> None:
    sets = writer_bias.load_sets(clone)
    report = writer_bias.evaluate(tiny_detector, sets)
    rows = {r["set"]: r for r in report["sets"]}
    for name, texts in sets.items():
        row = rows[name]
        assert row["n"] == len(texts) == sum(row["verdicts"].values())
    toefl = rows["TOEFL_real_4"]
    assert toefl["verdicts"].get("insufficient_text", 0) >= 1  # "Too short." abstains

    # recompute the diagnostic: the combiner's P(AI) on the same features, against the ai line
    scores = tiny_detector.score_many(sets["TOEFL_real_4"])
    p = tiny_detector.bundle.combiner.predict_rows([s.features for s in scores])
    for s, q in zip(scores, p):
        if s.prob_ai is not None:  # an answered text's would-be P(AI) is its P(AI) before the display cap
            assert displayed_probability(q) == pytest.approx(s.prob_ai, abs=1e-9)
    assert toefl["would_be_ai_rate"] == pytest.approx(float(np.mean(p >= tiny_detector.threshold_ai)))
    assert toefl["would_be_ai_rate_at_loose_line"] == pytest.approx(float(np.mean(p >= report["loose_line"])))
    assert toefl["ai_rate"] == toefl["verdicts"].get("ai", 0) / 4
    assert toefl["ai_verdicts_at_loose_line"] == sum(s.prob_ai is not None and q >= report["loose_line"]
                                                     for s, q in zip(scores, p))

    md = writer_bias.to_markdown(report)
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + len(sets)  # header + a row per set
    assert "non-native (TOEFL)" in md


def test_main_writes_both_reports(tiny_bundle_dir: Path, clone: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "writer_bias"
    writer_bias.main(["--data", str(clone), "--bundle", str(tiny_bundle_dir), "--out", str(out)])
    report = json.loads(out.with_suffix(".json").read_text())
    assert {r["set"] for r in report["sets"]} == {"CS224N_gpt3_2", "TOEFL_gpt4polished_1", "TOEFL_real_4"}
    assert out.with_suffix(".md").read_text().startswith("# Writer bias")


def test_the_loose_line_is_the_target_fpr_line(tiny_detector, clone: Path) -> None:
    report = writer_bias.evaluate(tiny_detector, writer_bias.load_sets(clone), loose_fpr=0.2)
    assert report["loose_line"] == tiny_detector.ai_line(0.2)
    assert tiny_detector.ai_line() == tiny_detector.threshold_ai
    scores = tiny_detector.score_many(writer_bias.load_sets(clone)["CS224N_gpt3_2"], target_fpr=0.2)
    assert all(s.threshold_ai == pytest.approx(report["loose_line"]) for s in scores)


def test_longer_sets_get_a_copy_cut_to_the_toefl_length() -> None:
    sets = {"TOEFL_real_3": ["a b c", "a b c d e", "a b c d"],  # median 4 words
            "HewlettStudentEssay_real_2": ["w " * 10, "x " * 8], "CS224N_real_1": ["one two"],
            "TOEFL_gpt4polished_1": ["p " * 9], "CS224N_gpt3_1": ["g " * 9]}
    out = writer_bias.length_matched(sets)
    # only native writers' longer sets get a cut copy: not the shorter one, the polished TOEFL or the AI set
    assert set(out) == set(sets) | {"HewlettStudentEssay_real_2@4w"}
    assert out["HewlettStudentEssay_real_2@4w"] == ["w w w w", "x x x x"]
    no_reference = {"HewlettStudentEssay_real_2": ["w"]}
    assert writer_bias.length_matched(no_reference) == no_reference
