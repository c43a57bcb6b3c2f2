"""A bundle with discrepancy-trained evidence: the detector forks the tuned top blocks and reads the witness in
its one pass, and scores exactly what the training side computed."""

from __future__ import annotations

import random

import numpy as np
import pytest

from detector.bundle import Bundle, BundleError
from detector.combiner import CalibratedCombiner
from detector.detector import Detector
from detector.token_stats import compute_token_stats
from detector.witness import witness_statistic
from synthetic import ai_text, human_text
from training.ddl import DDLConfig, DDLTrainer, lora_factors
from training.evidence_bundle import evidence_bundle


@pytest.fixture(scope="module")
def evidence_setup(tiny_bundle_dir, tiny_lm, tmp_path_factory):
    rng = random.Random(11)
    pairs = [(human_text(rng), ai_text(rng)) for _ in range(3)]
    root = tmp_path_factory.mktemp("evidence-bundle")
    cfg = DDLConfig(k=1, lr=5e-3, epochs=1, max_tokens=64)  # the tiny bundle's max_tokens: both cut alike
    trainer = DDLTrainer(tiny_lm, cfg, root=root / "ddl").fit(pairs)
    factors, scale = lora_factors(trainer.model_)
    texts = [t for pair in pairs for t in pair]
    y = np.array([0, 1] * 3)
    beta = np.linspace(-1.0, 1.0, 8)
    names = ["lastde", "tuned_discrepancy", "witness"]
    X = np.random.default_rng(0).normal(size=(40, 3)) + np.repeat([[0.0], [1.0]], 20, axis=0)
    combiner = CalibratedCombiner(names, C=0.1, calibration="platt").fit(X, np.repeat([0, 1], 20))
    combiner.recalibrate(np.array([-2.0, -1.0, 0.5, 1.0, 2.0, 3.0]), y)
    base = Bundle.load(tiny_bundle_dir)
    thresholds = {**base.manifest["thresholds"], "ai": 0.9, "human": 0.1}
    bundle = evidence_bundle(base, root / "tiny-ddl", combiner=combiner, factors=factors, scale=scale, k=1,
                             ddl_setting={"pairs": 3, "max_tokens": 64}, witness_beta=beta, thresholds=thresholds,
                             calibration_probs=base.manifest["calibration_probs"])
    return bundle, trainer, texts, beta


def test_detector_reads_the_tuned_fork_and_the_witness(evidence_setup, tiny_lm) -> None:
    bundle, trainer, texts, beta = evidence_setup
    det = Detector(Bundle.load(bundle.path), tiny_lm)
    assert det.fork is not None and det.hidden_layer == tiny_lm.num_layers - 1
    assert det.feature_names[-2:] == ["tuned_discrepancy", "witness"]
    text = texts[1]
    score = det.score(text)
    # the tuned discrepancy is the trained peft model's own, on the tokens the detector scored
    assert det.max_tokens == trainer.cfg.max_tokens
    expected = float(trainer.score([score.text])[0])
    assert score.features["tuned_discrepancy"] == pytest.approx(expected, rel=1e-4, abs=1e-4)
    (st,) = compute_token_stats(tiny_lm, [score.text], max_tokens=det.max_tokens, witness=True)
    assert score.features["witness"] == pytest.approx(witness_statistic(st.witness_residual, st.witness_cov, beta),
                                                      rel=1e-6)
    assert set(score.features) == set(det.feature_names)
    # and the shown probability is the bundle's combiner on exactly those features
    raw = float(det.bundle.combiner.predict_rows([score.features])[0])
    assert score.prob_ai == pytest.approx(min(max(raw, 0.001), 0.999), abs=1e-6) or score.label == "insufficient_text"


def test_bundle_without_its_adapter_is_refused(evidence_setup, tmp_path) -> None:
    import shutil

    bundle = evidence_setup[0]
    broken = tmp_path / "broken"
    shutil.copytree(bundle.path, broken)
    (broken / "ddl_adapter.safetensors").unlink()
    with pytest.raises(BundleError, match="adapter"):
        Bundle.load(broken)
