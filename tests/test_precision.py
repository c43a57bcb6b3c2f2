"""Every precision path, forced on whatever CPU runs the suite.

Why: a bf16-only crash (head blocks in bf16 next to an fp32 score layer) went unnoticed because CI only ever
ran on AVX2 machines, where ``auto`` means fp32. bf16 runs on AVX2 too (emulated, slower), and the int8
blocks run everywhere, so each precision is forced here through the same switches users have
(``dtype=`` and ``$DETECTOR_DTYPE``) instead of trusting the CPU to pick it.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from detector import Detector
from detector.lm import DTYPE_CHOICES, DTYPE_ENV, BackboneError, LanguageModel, default_dtype, load_lm, resolve_dtype
from detector.quantize import Int8Linear, is_quantized, quantize_blocks
from detector.token_stats import compute_token_stats
from synthetic import AI_SENTENCES, ai_text, human_text

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
FORCED = ("float32", "bfloat16")
# How far (nats, mean |delta| per token) a precision may move the per-token log-probs of fp32 SmolLM2.
LOGPROB_BOUND = 0.05


def _texts() -> list[str]:
    rng = random.Random(2024)
    return [" ".join(AI_SENTENCES * 2)] + [human_text(rng) for _ in range(3)] + [ai_text(rng) for _ in range(3)]


# ----------------------------------------------------------------------------- the switches


def test_env_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DTYPE_ENV, "bfloat16")
    assert resolve_dtype() == torch.bfloat16
    monkeypatch.setenv(DTYPE_ENV, " Float32 ")
    assert resolve_dtype() == torch.float32
    monkeypatch.setenv(DTYPE_ENV, "int8")
    assert resolve_dtype() == torch.qint8
    monkeypatch.setenv(DTYPE_ENV, "bf16")
    assert resolve_dtype("float32") == torch.float32  # an explicit choice beats the environment
    monkeypatch.setenv(DTYPE_ENV, "auto")
    assert resolve_dtype() == default_dtype(torch.device("cpu"))
    monkeypatch.delenv(DTYPE_ENV)
    assert resolve_dtype() == default_dtype(torch.device("cpu"))
    assert default_dtype(torch.device("cpu")) in (torch.float32, torch.bfloat16)  # auto never picks int8


@pytest.mark.parametrize("bad", ["float8", "half-ish", "int4"])
def test_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv(DTYPE_ENV, bad)
    with pytest.raises(BackboneError, match=rf"unknown precision '{bad}'; choose one of auto, float32, bfloat16"):
        resolve_dtype()
    monkeypatch.delenv(DTYPE_ENV)
    with pytest.raises(BackboneError, match="unknown precision"):
        resolve_dtype(bad)
    assert "int8" in DTYPE_CHOICES


def test_env_reaches_the_detector(monkeypatch: pytest.MonkeyPatch, tiny_bundle_dir: Path) -> None:
    monkeypatch.setenv(DTYPE_ENV, "bfloat16")
    det = Detector.load(str(tiny_bundle_dir))
    assert det.precision == "bfloat16" and det.lm.dtype == torch.bfloat16
    monkeypatch.setenv(DTYPE_ENV, "float32")
    assert Detector.load(str(tiny_bundle_dir)).precision == "float32"
    monkeypatch.setenv(DTYPE_ENV, "nope")
    with pytest.raises(BackboneError, match="unknown precision 'nope'"):
        Detector.load(str(tiny_bundle_dir))


# ----------------------------------------------------------------------------- tiny GPT-2, end to end


@pytest.fixture(scope="module")
def fp32_scores(tiny_bundle_dir: Path) -> list:
    return Detector.load(str(tiny_bundle_dir), dtype="float32").score_many(_texts())


@pytest.mark.parametrize("precision", [*FORCED, "int8"])
def test_tiny_detector_at_each_precision(tiny_bundle_dir: Path, fp32_scores: list, precision: str) -> None:
    det = Detector.load(str(tiny_bundle_dir), dtype=precision)
    assert det.precision == precision
    assert det.lm.precision == precision
    if isinstance(det.head, torch.nn.Module):  # a fine-tuned block head is fp32 whatever the backbone
        assert all(p.dtype == torch.float32 for p in det.head.parameters())
    texts = _texts()
    scores = det.score_many(texts, batch_size=3)
    for ref, s in zip(fp32_scores, scores):
        assert s.error is None and s.prob_ai is not None and math.isfinite(s.prob_ai) and 0.0 <= s.prob_ai <= 1.0
        assert all(math.isfinite(v) for v in s.features.values())
        assert abs(s.prob_ai - ref.prob_ai) <= 0.05
        # Same verdict, except where fp32 itself sits on a threshold: the tiny bundle is trained to saturation,
        # so its thresholds and many probabilities sit together at the 1e-3 clip (a flip there means nothing).
        margin = min(abs(ref.prob_ai - det.threshold_ai), abs(ref.prob_ai - det.threshold_human))
        if margin > 1e-3:
            assert s.label == ref.label


def test_one_text_scores_the_same_alone_and_batched_in_bf16(tiny_bundle_dir: Path) -> None:
    det = Detector.load(str(tiny_bundle_dir), dtype="bfloat16")
    texts = _texts()
    many = det.score_many(texts, batch_size=4)
    for text, m in zip(texts, many):
        assert det.score(text).prob_ai == pytest.approx(m.prob_ai, abs=0.01)


# ----------------------------------------------------------------------------- int8 blocks (detector.quantize)


def test_quantize_blocks_leaves_embedding_and_head_fp32(tiny_gpt2_dir: Path, tiny_lm: LanguageModel) -> None:
    lm = load_lm(str(tiny_gpt2_dir), device="cpu", dtype="int8")
    assert lm is not tiny_lm and lm.precision == "int8" and is_quantized(lm.model) and not is_quantized(tiny_lm.model)
    assert lm.identity == tiny_lm.identity  # same weights; the precision is pinned separately (describe, caches)
    model = lm.model
    blocks = model.transformer.h
    assert all(isinstance(m, Int8Linear) for b in blocks for m in (b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc))
    assert model.lm_head.weight.dtype == torch.float32 and isinstance(model.lm_head, torch.nn.Linear)
    assert model.get_input_embeddings().weight.dtype == torch.float32
    # state_dict shows dequantised weights in the original layout, close to the fp32 ones
    ref, q = tiny_lm.model.state_dict(), model.state_dict()
    for key in ("transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_proj.weight"):
        assert q[key].shape == ref[key].shape
        step = ref[key].abs().amax(dim=0) / Int8Linear.WEIGHT_QMAX  # per output channel (Conv1D: columns)
        assert torch.all((q[key] - ref[key]).abs() <= step / 2 + 1e-6)


def test_int8_linear_matches_fp32_linear() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    x = torch.randn(3, 7, 64)
    q = Int8Linear(linear)
    out, ref = q(x), linear(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_quantize_blocks_refuses_bf16(tiny_gpt2_dir: Path) -> None:
    lm = load_lm(str(tiny_gpt2_dir), device="cpu", dtype="bfloat16")
    with pytest.raises(ValueError, match="fp32 model"):
        quantize_blocks(lm.model)


# ----------------------------------------------------------------------------- SmolLM2 + the shipped bundle (slow)


def _sample_texts() -> tuple[list[str], list[str]]:
    with open(SAMPLES / "labels.csv") as fh:
        labels = {row["file"]: row["label"] for row in csv.DictReader(fh)}
    files = sorted(p for p in SAMPLES.glob("*.txt") if p.name in labels)
    return [p.read_text() for p in files], [labels[p.name] for p in files]


@pytest.mark.slow
def test_shipped_bundle_bf16_agrees_with_fp32() -> None:
    texts, truth = _sample_texts()
    full = Detector.load(dtype="float32")
    half = Detector.load(dtype="bfloat16")
    assert (full.precision, half.precision) == ("float32", "bfloat16")
    a, b = full.score_many(texts), half.score_many(texts)
    deltas = [abs(x.prob_ai - y.prob_ai) for x, y in zip(a, b)]
    print(f"\nshipped bundle on {len(texts)} samples: bf16 vs fp32 max |dP| {max(deltas):.4f}, "
          f"mean {np.mean(deltas):.4f}; labels fp32 {[s.label for s in a]}, bf16 {[s.label for s in b]}")
    assert [s.label for s in a] == [s.label for s in b]
    assert max(deltas) <= 0.05
    assert all(math.isfinite(s.prob_ai) for s in b)
    ai = [s.prob_ai for s, t in zip(b, truth) if t == "ai"]
    assert min(ai) > max(s.prob_ai for s, t in zip(b, truth) if t == "human")


def _logprob_gap(reference: LanguageModel, other: LanguageModel, texts: list[str]) -> float:
    ref = compute_token_stats(reference, texts, max_tokens=256)
    out = compute_token_stats(other, texts, max_tokens=256)
    return float(np.mean(np.concatenate([np.abs(r.logprob - o.logprob) for r, o in zip(ref, out)])))


@pytest.mark.slow
def test_bf16_logprobs_within_bound(smollm2_fp32: LanguageModel, smollm2_bf16: LanguageModel) -> None:
    gap = _logprob_gap(smollm2_fp32, smollm2_bf16, _sample_texts()[0])
    print(f"\nbf16 vs fp32 per-token log-prob mean |delta| on the samples: {gap:.4f} nats")
    assert gap <= LOGPROB_BOUND


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="int8 blocks move SmolLM2's log-probs by ~0.2 nats (bound 0.05): "
                   "why auto never picks int8; if this starts passing, revisit detector.lm.default_dtype")
def test_int8_logprobs_within_bound(smollm2_fp32: LanguageModel) -> None:
    import copy
    import dataclasses

    int8 = dataclasses.replace(smollm2_fp32, model=quantize_blocks(copy.deepcopy(smollm2_fp32.model)))
    assert int8.precision == "int8"
    gap = _logprob_gap(smollm2_fp32, int8, _sample_texts()[0])
    print(f"\nint8 blocks vs fp32 per-token log-prob mean |delta| on the samples: {gap:.4f} nats")
    assert gap <= LOGPROB_BOUND
