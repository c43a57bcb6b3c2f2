"""The six-source evidence pass: witness moments from the same pass, and a resumable cache keyed by text."""

from __future__ import annotations

import random

import numpy as np
import pytest

from detector.token_stats import compute_token_stats
from detector.tuned_top import TunedTop
from detector.witness import identity_beta, witness_statistic
from synthetic import ai_text, human_text
from training import evidence


def test_pass_witness_moments_give_fast_detectgpt_at_the_identity(tiny_lm) -> None:
    """With w(z) = z the witness statistic from the pass's moments is the Fast-DetectGPT feature, up to the fp32
    rounding of the moments' E[B^2] - E[B]^2 form over a whole vocabulary."""
    from detector.features import fast_detectgpt

    text = ai_text(random.Random(0))
    (st,) = compute_token_stats(tiny_lm, [text], max_tokens=64, witness=True)
    assert st.witness_residual.shape == (st.n_tokens, 8) and st.witness_cov.shape == (st.n_tokens, 15)
    t = witness_statistic(st.witness_residual, st.witness_cov, identity_beta())
    assert t == pytest.approx(fast_detectgpt(st.logprob, st.entropy, st.var_ref), rel=2e-2)


def test_evidence_is_cached_and_resumes(tiny_lm, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DETECTOR_CACHE_DIR", str(tmp_path))
    rng = random.Random(3)
    texts = [human_text(rng) for _ in range(3)] + [ai_text(rng) for _ in range(3)]
    tops = {"base": TunedTop(tiny_lm.model, 1)}
    monkeypatch.setattr(evidence, "SHARD_SIZE", 2)
    first, finished = evidence.run_evidence(tiny_lm, texts, tops, max_tokens=48, k=1, max_seconds=0.0)
    assert not finished and len(first) == 2  # stopped after the first shard
    calls = []
    real = evidence.text_evidence
    monkeypatch.setattr(evidence, "text_evidence", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    done, finished = evidence.run_evidence(tiny_lm, texts, tops, max_tokens=48, k=1)
    assert finished and len(done) == 6 and sum(calls) == 4  # only the texts not yet cached
    rec = done[evidence.text_key(texts[0])]
    # an untuned fork is the base model: its discrepancy is the pass's own Fast-DetectGPT feature
    assert rec["tuned"]["base"] == pytest.approx(rec["features"]["fast_detectgpt"], rel=1e-4, abs=1e-4)
    assert rec["witness_residual"].shape == (8,) and np.isfinite(rec["witness_cov"]).all()


def test_fork_free_pass_without_witness_has_its_own_cache(tiny_lm, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DETECTOR_CACHE_DIR", str(tmp_path))
    texts = [human_text(random.Random(9))]
    with_witness, _ = evidence.run_evidence(tiny_lm, texts, {}, max_tokens=48, k=1)
    plain, finished = evidence.run_evidence(tiny_lm, texts, {}, max_tokens=48, k=1, witness=False)
    key = evidence.text_key(texts[0])
    assert finished and plain[key]["tuned"] == {} and not plain[key]["witness_residual"].any()
    assert with_witness[key]["witness_residual"].any()  # a different cache: not the record without moments
    assert plain[key]["features"] == with_witness[key]["features"]
    assert evidence.evidence_dir(tiny_lm, 48, 1, {}) != evidence.evidence_dir(tiny_lm, 48, 1, {}, witness=False)


def test_adapters_under_the_same_tag_do_not_share_a_cache(tiny_lm) -> None:
    """The cache keys on the merged weights, not only on the tags: another adapter setting (epochs, pairs) for
    the same folds gets its own records."""
    import torch

    name, module = next((n, m) for n, m in tiny_lm.model.named_modules() if n.endswith("h.1.attn.c_attn"))
    d_in, d_out = module.weight.shape  # GPT-2's Conv1D stores (in, out)
    factors = {f"{name}.A": torch.ones(2, d_in), f"{name}.B": torch.ones(d_out, 2)}
    base = TunedTop(tiny_lm.model, 1)
    one = TunedTop(tiny_lm.model, 1).merge_lora(factors, 0.01)
    two = TunedTop(tiny_lm.model, 1).merge_lora(factors, 0.02)
    dirs = {evidence.evidence_dir(tiny_lm, 48, 1, {"A": top.adapter_digest}) for top in (base, one, two)}
    assert len(dirs) == 3
    again = TunedTop(tiny_lm.model, 1).merge_lora(factors, 0.01)
    assert again.adapter_digest == one.adapter_digest


def test_windowed_fork_reads_only_the_first_tokens(tiny_lm) -> None:
    """A fork with ``window`` w gives the discrepancy of the text cut to w tokens (the window DDL trained on),
    and a windowed adapter keys its own cache."""
    import torch

    from detector.tuned_top import tuned_discrepancy

    text = ai_text(random.Random(5))
    k = 1
    (full,) = compute_token_stats(tiny_lm, [text], max_tokens=64, hidden_layer=tiny_lm.num_layers - k)
    (cut,) = compute_token_stats(tiny_lm, [text], max_tokens=24, hidden_layer=tiny_lm.num_layers - k)
    assert full.n_tokens > 24 and cut.n_tokens == 24
    windowed = TunedTop(tiny_lm.model, k, window=24)
    whole = TunedTop(tiny_lm.model, k)
    got = tuned_discrepancy(windowed, tiny_lm, full.hidden, full.token_ids)
    assert got == pytest.approx(tuned_discrepancy(whole, tiny_lm, cut.hidden, cut.token_ids), rel=1e-4, abs=1e-4)
    assert got != pytest.approx(tuned_discrepancy(whole, tiny_lm, full.hidden, full.token_ids), rel=1e-3)
    name, module = next((n, m) for n, m in tiny_lm.model.named_modules() if n.endswith("h.1.attn.c_attn"))
    factors = {f"{name}.A": torch.zeros(2, module.weight.shape[0]), f"{name}.B": torch.zeros(module.weight.shape[1], 2)}
    assert (TunedTop(tiny_lm.model, k, 24).merge_lora(factors, 1.0).adapter_digest
            != TunedTop(tiny_lm.model, k).merge_lora(factors, 1.0).adapter_digest)
