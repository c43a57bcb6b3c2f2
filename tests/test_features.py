"""Zero-shot features against values worked out by hand on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detector import features as F
from detector.sentences import sentence_spans
from detector.token_stats import TokenStats

# "One two three. Four five six seven. Hi." tokenised GPT-2 style (leading spaces belong to the next word).
TEXT = "One two three. Four five six seven. Hi."
OFFSETS = np.array([[0, 3], [3, 7], [7, 13], [13, 14],  # One two three .
                    [14, 19], [19, 24], [24, 28], [28, 34], [34, 35],  # Four five six seven .
                    [35, 38], [38, 39]])  # Hi .
SENTENCE_OF_TOKEN = [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2]
LOGPROB = np.array([-1.0, -2.0, -3.0, -2.0, -1.0, -1.0, -1.0, -1.0, -1.0, -5.0, -5.0])


def test_simple_means() -> None:
    lp = np.array([-1.0, -2.0, -3.0])
    assert F.mean_logprob(lp) == pytest.approx(-2.0)
    assert F.perplexity(lp) == pytest.approx(math.exp(2.0))
    assert F.mean_log_rank(np.array([1, 2, 4])) == pytest.approx(math.log(8) / 3)
    assert F.mean_entropy(np.array([0.5, 1.5, 4.0])) == pytest.approx(2.0)


def test_gltr_buckets_edges() -> None:
    ranks = np.array([1, 5, 11, 100, 101, 1000, 1001])
    # <=10: {1, 5}; 11..100: {11, 100}; 101..1000: {101, 1000}; >1000: {1001}
    assert F.gltr_buckets(ranks) == pytest.approx((2 / 7, 2 / 7, 2 / 7, 1 / 7))
    assert F.gltr_buckets(np.array([10])) == (1.0, 0.0, 0.0, 0.0)
    assert F.gltr_buckets(np.array([], dtype=np.int64)) == (0.0, 0.0, 0.0, 0.0)


def test_lrr() -> None:
    lp, rank = np.array([-1.0, -2.0, -3.0]), np.array([1, 2, 4])
    assert F.log_likelihood_log_rank_ratio(lp, rank) == pytest.approx(6.0 / math.log(8))
    # every token the top choice: sum log rank = 0, defined as 0 rather than dividing by zero
    assert F.log_likelihood_log_rank_ratio(lp, np.array([1, 1, 1])) == 0.0


def test_fast_detectgpt_formula() -> None:
    lp, ent, var = np.array([-1.0, -2.0]), np.array([1.5, 0.5]), np.array([0.25, 0.75])
    # (sum log p - sum E[log p]) / sqrt(sum Var) with E[log p] = -entropy: (-3 - (-2)) / sqrt(1) = -1
    assert F.fast_detectgpt(lp, ent, var) == pytest.approx(-1.0)
    assert F.fast_detectgpt(np.array([-0.5, -0.5]), np.array([2.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(1.5)
    assert F.fast_detectgpt(lp, ent, np.zeros(2)) == 0.0


def test_fast_detectgpt_matches_its_definition_on_a_distribution() -> None:
    """The analytic score equals (log p(x) - E[log p(X)]) / Std[log p(X)] computed from the distribution."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 20)) * 2
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    p = np.exp(logp)
    observed = rng.integers(0, 20, size=5)
    lp = logp[np.arange(5), observed]
    mean = (p * logp).sum(-1)  # E[log p] per position
    var = (p * (logp - mean[:, None]) ** 2).sum(-1)
    expected = (lp.sum() - mean.sum()) / math.sqrt(var.sum())
    assert F.fast_detectgpt(lp, -mean, var) == pytest.approx(expected)


def test_sentence_assignment_and_burstiness() -> None:
    spans = sentence_spans(TEXT)
    assert [TEXT[s:e] for s, e in spans] == ["One two three.", "Four five six seven.", "Hi."]
    assert F.token_sentence_index(OFFSETS, spans).tolist() == SENTENCE_OF_TOKEN
    # sentence perplexities: exp(2) and exp(1); "Hi." has 2 tokens (< MIN_SENTENCE_TOKENS) and is skipped
    ppl = F.sentence_perplexities(LOGPROB, OFFSETS, spans)
    np.testing.assert_allclose(ppl, [math.exp(2), math.exp(1)])
    mean, std, top = F.burstiness(LOGPROB, OFFSETS, spans)
    assert mean == pytest.approx((math.exp(2) + math.exp(1)) / 2)
    assert std == pytest.approx((math.exp(2) - math.exp(1)) / 2)  # population std of two values
    assert top == pytest.approx(math.exp(2))


def test_burstiness_falls_back_to_whole_text() -> None:
    lp, offsets = np.array([-1.0, -3.0]), np.array([[0, 2], [2, 3]])
    whole = math.exp(2.0)
    assert F.burstiness(lp, offsets, [(0, 3)]) == pytest.approx((whole, 0.0, whole))  # one 2-token sentence
    assert F.burstiness(lp, offsets, []) == pytest.approx((whole, 0.0, whole))  # no sentences at all


def test_token_sentence_index_edge_cases() -> None:
    offsets = np.array([[0, 2], [2, 5], [5, 9]])
    assert F.token_sentence_index(offsets, []).tolist() == [-1, -1, -1]
    assert F.token_sentence_index(np.zeros((0, 2), dtype=np.int64), [(0, 4)]).tolist() == []
    # a token before the first sentence (leading whitespace) goes to that sentence
    assert F.token_sentence_index(np.array([[0, 1], [1, 4]]), [(1, 4)]).tolist() == [0, 0]


def _stats(n: int = len(LOGPROB)) -> TokenStats:
    rank = np.array([1, 2, 1, 50, 3, 1, 1, 2000, 1, 7, 1])[:n]
    entropy = np.linspace(0.5, 3.0, len(LOGPROB))[:n].astype(np.float32)
    var_ref = np.linspace(1.0, 2.0, len(LOGPROB))[:n].astype(np.float32)
    return TokenStats(token_ids=np.arange(n), offsets=OFFSETS[:n], logprob=LOGPROB[:n].astype(np.float32),
                      rank=rank, entropy=entropy, var_ref=var_ref)


def test_extract_features() -> None:
    stats = _stats()
    feats = F.extract_features(stats, sentence_spans(TEXT))
    assert list(feats) == list(F.FEATURE_NAMES)
    assert all(isinstance(v, float) and math.isfinite(v) for v in feats.values())
    n = len(LOGPROB)
    assert feats["n_tokens"] == n
    assert feats["mean_logprob"] == pytest.approx(LOGPROB.mean())
    assert feats["perplexity"] == pytest.approx(math.exp(-LOGPROB.mean()), rel=1e-5)
    assert feats["mean_log_rank"] == pytest.approx(np.log(stats.rank).mean())
    assert feats["gltr_top10"] == pytest.approx(9 / n)
    assert feats["gltr_top100"] == pytest.approx(1 / n)
    assert feats["gltr_rest"] == pytest.approx(1 / n)
    fdg = (LOGPROB.sum() + stats.entropy.sum()) / math.sqrt(stats.var_ref.sum())
    assert feats["fast_detectgpt"] == pytest.approx(fdg, rel=1e-5)
    assert feats["fast_detectgpt_per_token"] == pytest.approx(fdg / math.sqrt(n), rel=1e-5)
    assert feats["burstiness_max_ppl"] == pytest.approx(math.exp(2), rel=1e-5)


def test_extract_features_empty_is_zeros() -> None:
    empty = TokenStats(token_ids=np.zeros(0, dtype=np.int64), offsets=np.zeros((0, 2), dtype=np.int64),
                       logprob=np.zeros(0, dtype=np.float32), rank=np.zeros(0, dtype=np.int64),
                       entropy=np.zeros(0, dtype=np.float32), var_ref=np.zeros(0, dtype=np.float32))
    feats = F.extract_features(empty, [])
    assert list(feats) == list(F.FEATURE_NAMES)
    assert all(v == 0.0 for v in feats.values())


def test_extract_features_without_spans() -> None:
    """Tokens but no sentence spans (a caller that skips sentence splitting) must not crash."""
    feats = F.extract_features(_stats(), [])
    whole = math.exp(-LOGPROB.mean())
    assert feats["burstiness_mean_ppl"] == pytest.approx(whole, rel=1e-5)
    assert feats["burstiness_std_ppl"] == 0.0


def _slow_diversity_entropy(x: list[float], m: int, tau: int, bins: int) -> float:
    """Loop-by-loop reference of Wang et al.'s diversity entropy."""
    vecs = [[x[i + j * tau] for j in range(m)] for i in range(len(x) - (m - 1) * tau)]
    sims = []
    for a, b in zip(vecs[:-1], vecs[1:]):
        na, nb = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
        sims.append(sum(p * q for p, q in zip(a, b)) / (na * nb) if na * nb > 0 else 1.0)
    counts = [0] * bins
    for c in sims:
        counts[min(int((c + 1.0) / 2.0 * bins), bins - 1)] += 1
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c) / math.log(bins)


def test_diversity_entropy_matches_slow_reference() -> None:
    rng = np.random.default_rng(1)
    for n in (5, 17, 80):
        x = rng.normal(-3, 2, size=n)
        assert F.diversity_entropy(x, 3, 1, 10) == pytest.approx(_slow_diversity_entropy(list(x), 3, 1, 10), abs=1e-9)
        assert F.diversity_entropy(x, 2, 2, 5) == pytest.approx(_slow_diversity_entropy(list(x), 2, 2, 5), abs=1e-9)
    assert F.diversity_entropy(np.array([-1.0, -2.0])) == 0.0  # too short to embed


def test_multiscale_diversity_entropy_coarse_grains_by_moving_average() -> None:
    x = np.random.default_rng(2).normal(-3, 2, size=40)
    mde = F.multiscale_diversity_entropy(x, scales=3)
    coarse3 = [sum(x[i:i + 3]) / 3 for i in range(len(x) - 2)]
    assert mde[0] == pytest.approx(_slow_diversity_entropy(list(x), 3, 1, 10))
    assert mde[2] == pytest.approx(_slow_diversity_entropy(coarse3, 3, 1, 10))
    spread, score = F.lastde(x)
    assert spread == pytest.approx(float(np.std(F.multiscale_diversity_entropy(x))))
    assert score == pytest.approx(float(np.mean(x)) / max(spread, F.LASTDE_MIN_SPREAD))


def test_surprisal_shape_matches_slow_reference() -> None:
    lp = np.random.default_rng(3).normal(-3, 2, size=50)
    s = [-v for v in lp]
    n = len(s)
    mean = sum(s) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in s) / n)
    z = [(v - mean) / std for v in s]
    d1 = [b - a for a, b in zip(s, s[1:])]
    d2 = [b - a for a, b in zip(d1, d1[1:])]

    def sd(v: list[float]) -> float:
        m = sum(v) / len(v)
        return math.sqrt(sum((a - m) ** 2 for a in v) / len(v))

    expected = (std, sum(v ** 3 for v in z) / n, sum(v ** 4 for v in z) / n - 3, sum(abs(v) for v in d1) / len(d1),
                sd(d1), sd(d2), sum(a * b for a, b in zip(z, z[1:])) / (n - 1))
    assert F.surprisal_shape(lp) == pytest.approx(expected)
    assert F.surprisal_shape(np.array([-1.0, -1.0, -1.0])) == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_per_character_features_match_a_character_by_character_reference() -> None:
    """Log-prob and entropy per character and characters per token (``per_character``), against a slow loop that
    hands each token's values out over the characters it covers."""
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 9, 40)
    starts = np.concatenate([[2], 2 + np.cumsum(lengths[:-1])])  # the scored text starts at character 2
    offsets = np.column_stack([starts, starts + lengths])
    lp, ent = -rng.exponential(2.0, 40), rng.exponential(1.5, 40)
    per_char_lp, per_char_ent = [], []
    for (a, b), v, e in zip(offsets, lp, ent):
        per_char_lp += [v / (b - a)] * (b - a)
        per_char_ent += [e / (b - a)] * (b - a)
    got = F.per_character(lp, ent, offsets)
    assert got[0] == pytest.approx(np.mean(per_char_lp))
    assert got[1] == pytest.approx(np.mean(per_char_ent))
    assert got[2] == pytest.approx(len(per_char_lp) / 40)
    # the same characters cut into twice as many pieces: per character unchanged, per token halved
    halves = np.repeat(lp / 2, 2), np.repeat(ent / 2, 2)
    split = np.column_stack([np.repeat(starts, 2), np.repeat(starts + lengths, 2)])
    split[0::2, 1] = starts + lengths // 2
    split[1::2, 0] = starts + lengths // 2
    again = F.per_character(*halves, split)
    assert again[:2] == pytest.approx(got[:2]) and again[2] == pytest.approx(got[2] / 2)
    assert F.per_character(np.zeros(0), np.zeros(0), np.zeros((0, 2))) == (0.0, 0.0, 0.0)
