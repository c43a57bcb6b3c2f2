"""The shipped default bundle: loads on the embedded model, ranks the samples, and its numbers match the docs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "detector" / "bundles" / "smollm2-en"
EVAL = json.loads((REPO / "reports" / "eval.json").read_text())
METRIC_KEYS = ("auroc", "tpr_at_1fpr", "tpr_at_5fpr", "ece", "brier")


def test_bundle_is_small_and_self_describing() -> None:
    size = sum(p.stat().st_size for p in BUNDLE.iterdir())
    assert size < 40 * 2**20
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    assert manifest["backbone"]["spec"] == "embedded:smollm2"
    assert len(manifest["backbone"]["weights_sha256"]) == 64
    assert set(METRIC_KEYS) <= set(EVAL["overall"])


def test_metrics_file_matches_the_report() -> None:
    metrics = json.loads((BUNDLE / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert metrics["overall"][key] == pytest.approx(EVAL["overall"][key])


NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?![\w])")  # 0.949, 1,162, 129.3; not bf16 or 270M


def _numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


def _quoted(text: str) -> set[str]:
    """Every number in a source text, units glued on or not (``0.829s``, ``1078 MB``)."""
    return set(re.findall(r"(?<![\d.,])\d+(?:,\d{3})*(?:\.\d+)?", text))


def _row(text: str, label: str) -> list[str]:
    """The cells of the one markdown table row whose first cell is ``label``, or else contains it."""
    rows = [line for line in text.splitlines() if line.startswith("|") and label in line.split("|")[1]]
    rows = [line for line in rows if line.split("|")[1].strip() == label] or rows
    assert len(rows) == 1, (label, rows)
    return [cell.strip() for cell in rows[0].strip().strip("|").split("|")]


def _with_interval(section: dict, key: str) -> list[str]:
    lo, hi = section["ci95"][key]
    return [f"{section[key]:.3f}", f"{lo:.3f}", f"{hi:.3f}"]


def _count(flagged: int, total: int) -> list[str]:
    return [f"{flagged:,}", f"{total:,}"]


def expected_accuracy_column(report: dict, end_to_end: dict | None, writer_bias: dict | None) -> dict[str, list[str]]:
    """The README accuracy table's numbers for one bundle, as printed (3 decimals, counts with commas): a
    six-source report (``training.ship_evidence``) or one of the single-pass pipeline (``gemma3-zh``)."""
    if "leave_one_source_out_pooled" not in report:
        return _single_pass_column(report)
    folds = report["leave_one_source_out"].values()
    pooled = report["leave_one_source_out_pooled"]
    verdict = report["ai_verdict_fpr"]["all"]
    column = {
        "**In distribution**": _with_interval(report["long_enough"], "auroc"),
        "AI texts caught at 1% false alarms": _with_interval(report["long_enough"], "tpr_at_1fpr"),
        "calibration error (ECE) of the probability shown": _with_interval(report["long_enough"], "ece"),
        "every test text, short ones included": _with_interval(report["overall"], "auroc"),
        "re-scored end to end": _with_interval(end_to_end["overall"], "auroc") if end_to_end else [],
        "test humans given the `ai` verdict": _count(verdict["n_flagged"], verdict["n_human"]),
        "**On sources it never saw**": [f"{sum(f['auroc'] for f in folds) / len(folds):.3f}"],
        "the hardest unseen source": [f"{min(f['auroc'] for f in folds):.3f}"],
        "calibration error (ECE), all unseen sources pooled": [f"{pooled['ece']:.3f}"],
        "humans of the unseen source given `ai`": _count(pooled["ai_flagged"], pooled["ai_humans"]),
        "AI texts of the unseen source given `ai`": [f"{pooled['ai_tpr']:.3f}"],
        "**Non-native writers**": [], "median P(AI) if length is ignored": [],
    }
    if writer_bias:
        sets = {s["set"]: s for s in writer_bias["sets"]}
        toefl, native_cut = sets["TOEFL_real_91"], sets["HewlettStudentEssay_real_88@104w"]
        column["**Non-native writers**"] = _count(toefl["verdicts"].get("ai", 0), toefl["n"])
        column["median P(AI) if length is ignored"] = [f"{toefl['median_would_be_prob_ai']:.3f}",
                                                       f"{native_cut['median_would_be_prob_ai']:.3f}"]
    return column


def _single_pass_column(report: dict) -> dict[str, list[str]]:
    """The column of a single-pass-pipeline report; the six-source-only rows read "not measured"."""
    guard = report["generalization"]["zero_shot_guard"]
    folds = report["generalization"]["leave_one_source_out_table"].values()
    loso_mean = sum(f["auroc"] for f in report["leave_one_source_out"].values()) / len(report["leave_one_source_out"])
    assert loso_mean == pytest.approx(guard["mean_auroc"])
    verdict = report["ai_verdict_fpr"]["all"]
    return {
        "**In distribution**": _with_interval(report["long_enough"], "auroc"),
        "AI texts caught at 1% false alarms": _with_interval(report["long_enough"], "tpr_at_1fpr"),
        "calibration error (ECE) of the probability shown": _with_interval(report["long_enough"], "ece"),
        "every test text, short ones included": _with_interval(report["overall"], "auroc"),
        "re-scored end to end": [],
        "test humans given the `ai` verdict": _count(verdict["n_flagged"], verdict["n_human"]),
        "**On sources it never saw**": [f"{loso_mean:.3f}"],
        "the hardest unseen source": [], "calibration error (ECE), all unseen sources pooled": [],
        "humans of the unseen source given `ai`": _count(sum(f[guard["model"]]["ai_flagged"] for f in folds),
                                                          sum(f[guard["model"]]["ai_humans"] for f in folds)),
        "AI texts of the unseen source given `ai`": [],
        "**Non-native writers**": [], "median P(AI) if length is ignored": [],
    }


def test_eval_has_the_six_source_keys() -> None:
    """reports/eval.json carries the leave-one-source-out evidence over all six English sources."""
    assert set(EVAL["leave_one_source_out"]) == {"BiScope", "DetectRL", "HC3-Plus", "L2R", "Lastde", "OUTFOX"}
    for fold in EVAL["leave_one_source_out"].values():
        assert {"auroc", "tpr_at_1fpr", "ece", "n", "ai_fpr", "ai_tpr"} <= set(fold)
    assert {"auroc", "ece", "ai_fpr", "ai_tpr"} <= set(EVAL["leave_one_source_out_pooled"])
    assert all({"n_human", "ai_fpr"} <= set(d) for d in EVAL["leave_one_source_out_domains"].values())
    assert EVAL["guard_holds"][EVAL["chosen"]]  # never below the best zero-shot feature - 0.02 on any fold


def test_readme_accuracy_table_is_the_reports() -> None:
    """Every number in the English column of the README's accuracy table equals the report's, as printed."""
    readme = (REPO / "README.md").read_text()
    end_to_end = json.loads((REPO / "reports" / "end_to_end" / "eval.json").read_text())
    writer_bias = json.loads((REPO / "reports" / "writer_bias.json").read_text())
    for label, numbers in expected_accuracy_column(EVAL, end_to_end, writer_bias).items():
        assert _numbers(_row(readme, label)[1]) == numbers, label


def test_readme_length_rules_are_the_bundles() -> None:
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    readme = " ".join((REPO / "README.md").read_text().split())
    assert manifest["thresholds"]["min_tokens"] == EVAL["long_enough"]["min_tokens"]
    assert f"English: {manifest['thresholds']['min_tokens']} tokens" in readme
    assert f"first {manifest['max_tokens']} tokens" in readme


def test_readme_speed_table_quotes_the_benchmark_output() -> None:
    """The speed rows for the English model quote the benchmark output kept in docs/design.md."""
    readme = (REPO / "README.md").read_text()
    design = (REPO / "docs" / "design.md").read_text()
    speed = design[design.index("## Speed on each kind of CPU"):design.index("## Engines")]
    table = readme[readme.index("| task |"):readme.index("\n\n", readme.index("| task |"))]
    rows = [line for line in table.splitlines()[2:] if "Gemma" not in line]
    assert len(rows) >= 4
    for row in rows:
        missing = set(_numbers(row)) - _quoted(speed)
        assert not missing, (row, missing)


def test_model_card_matches_the_report() -> None:
    card = (BUNDLE / "README.md").read_text()
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    assert manifest["backbone"]["weights_sha256"] in card and manifest["backbone"]["identity"] in card
    for licence in manifest["data"]["licences"].values():
        assert licence in card
    for label, section in (("every test text", EVAL["overall"]), ("texts it answers", EVAL["long_enough"])):
        assert _numbers(" ".join(_row(card, label)[1:])) == [
            f"{section['n']:,}", *_with_interval(section, "auroc"), *_with_interval(section, "tpr_at_1fpr"),
            f"{section['tpr_at_5fpr']:.3f}", *_with_interval(section, "ece"), f"{section['brier']:.3f}"], label
    in_distribution, held_out = card.split("On a source it never saw", 1)
    for group in EVAL["by_source"]:
        assert _numbers(" ".join(_row(in_distribution, group["group"])[1:])) == [
            f"{group['n']:,}", f"{group['auroc']:.3f}", f"{group['tpr_at_1fpr']:.3f}"], group["group"]
    for source, fold in EVAL["leave_one_source_out"].items():
        assert _numbers(" ".join(_row(held_out, source)[1:])) == [
            f"{fold['auroc']:.3f}", f"{fold['ece']:.3f}", *_count(fold["ai_flagged"], fold["ai_humans"]),
            f"{fold['ai_tpr']:.3f}"], source
    expected = expected_accuracy_column(EVAL, None, None)
    pooled = EVAL["leave_one_source_out_pooled"]
    assert _numbers(" ".join(_row(held_out, "all six")[1:])) == (
        expected["**On sources it never saw**"] + [f"{pooled['ece']:.3f}"]
        + expected["humans of the unseen source given `ai`"] + [f"{pooled['ai_tpr']:.3f}"])


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_default_detector_ranks_the_samples(smollm2_fp32, precision: str) -> None:
    from detector import Detector

    det = Detector.load(dtype=precision)
    assert det.precision == precision
    assert det.lm.weights_sha256 == json.loads((BUNDLE / "manifest.json").read_text())["backbone"]["weights_sha256"]
    with open(REPO / "data" / "samples" / "labels.csv") as fh:
        labels = {row["file"]: row["label"] for row in csv.DictReader(fh)}
    files = sorted(p for p in (REPO / "data" / "samples").glob("*.txt") if p.name in labels)
    scores = det.score_many([p.read_text() for p in files])
    ai = [s.prob_ai for p, s in zip(files, scores) if labels[p.name] == "ai"]
    human = [s.prob_ai for p, s in zip(files, scores) if labels[p.name] == "human"]
    assert ai and human and min(ai) > max(human)
    assert all(s.label != "ai" for p, s in zip(files, scores) if labels[p.name] == "human")
