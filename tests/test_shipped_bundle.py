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


def test_readme_headline_matches_the_report() -> None:
    row = next(line for line in (REPO / "README.md").read_text().splitlines() if "combined (shipped)" in line)
    numbers = [float(x) for x in re.findall(r"\d\.\d{3}", row)]
    assert numbers == [round(EVAL["overall"][k], 3) for k in METRIC_KEYS]


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
