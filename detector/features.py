"""Zero-shot detection features: pure functions of per-token statistics (one LM pass).

Each function takes numpy arrays of per-token values and returns one number. ``extract_features``
puts them together into the named vector the combiner consumes (order = ``FEATURE_NAMES``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detector.token_stats import TokenStats

# GLTR rank buckets (Gehrmann et al., 2019): top-10, 11-100, 101-1000, beyond.
GLTR_EDGES = (10, 100, 1000)
# Sentences shorter than this many tokens are too noisy for a sentence perplexity.
MIN_SENTENCE_TOKENS = 3

FEATURE_NAMES: tuple[str, ...] = (
    "mean_logprob", "perplexity", "mean_log_rank", "mean_entropy", "lrr",
    "gltr_top10", "gltr_top100", "gltr_top1000", "gltr_rest",
    "fast_detectgpt", "fast_detectgpt_per_token",
    "burstiness_mean_ppl", "burstiness_std_ppl", "burstiness_max_ppl",
    "n_tokens",
    "lastde_mde_std", "lastde",
    "surprisal_std", "surprisal_skew", "surprisal_kurtosis", "surprisal_diff1_mean", "surprisal_diff1_std",
    "surprisal_diff2_std", "surprisal_autocorr1",
    "logprob_per_char", "entropy_per_char", "chars_per_token",
)
# Lastde (Xu et al., 2024): embedding dimension, delay, similarity bins and number of scales of the
# multiscale diversity entropy of the log-prob series.
MDE_EMBED_DIM = 3
MDE_DELAY = 1
MDE_BINS = 10
MDE_SCALES = 5
# Floor of the MDE spread in the Lastde ratio: short or constant series would otherwise explode it.
LASTDE_MIN_SPREAD = 0.01


def mean_logprob(logprob: np.ndarray) -> float:
    """Average log-likelihood per token; AI text is more likely under an LM (Solaiman et al., 2019)."""
    return float(np.mean(logprob))


def perplexity(logprob: np.ndarray) -> float:
    """exp(-mean log-prob): the classic fluency score, low for machine text (e.g. GPTZero's first signal)."""
    return float(np.exp(-np.mean(logprob)))


def mean_log_rank(rank: np.ndarray) -> float:
    """Mean log of the observed token's rank; lower for machine text (Mitchell et al., 2023, DetectGPT baselines)."""
    return float(np.mean(np.log(rank)))


def mean_entropy(entropy: np.ndarray) -> float:
    """Mean entropy of the predictive distribution (Gehrmann et al., 2019, GLTR)."""
    return float(np.mean(entropy))


def log_likelihood_log_rank_ratio(logprob: np.ndarray, rank: np.ndarray) -> float:
    """LRR = -sum log p / sum log rank (Su et al., 2023, DetectLLM); higher for machine text."""
    denom = float(np.sum(np.log(rank)))
    return float(-np.sum(logprob) / denom) if denom > 0 else 0.0


def gltr_buckets(rank: np.ndarray) -> tuple[float, float, float, float]:
    """Fractions of tokens with rank <=10, 11-100, 101-1000, >1000 (Gehrmann et al., 2019, GLTR)."""
    n = max(len(rank), 1)
    a, b, c = GLTR_EDGES
    return (float(np.sum(rank <= a)) / n, float(np.sum((rank > a) & (rank <= b))) / n,
            float(np.sum((rank > b) & (rank <= c))) / n, float(np.sum(rank > c)) / n)


def fast_detectgpt(logprob: np.ndarray, entropy: np.ndarray, var_ref: np.ndarray) -> float:
    """Analytic conditional-probability curvature (Bao et al., 2024, Fast-DetectGPT, sampling = scoring model).

    (sum log p(x_t) - sum E[log p]) / sqrt(sum Var[log p]), with E[log p] = -entropy.
    """
    var = float(np.sum(var_ref))
    return float((np.sum(logprob) + np.sum(entropy)) / np.sqrt(var)) if var > 0 else 0.0


def sentence_perplexities(logprob: np.ndarray, offsets: np.ndarray,
                          spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Perplexity of each sentence with at least MIN_SENTENCE_TOKENS tokens (token -> sentence by start offset)."""
    sentence = token_sentence_index(offsets, spans)
    values = []
    for s in range(len(spans)):
        lp = logprob[sentence == s]
        if len(lp) >= MIN_SENTENCE_TOKENS:
            values.append(float(np.exp(-np.mean(lp))))
    return np.asarray(values, dtype=np.float64)


def burstiness(logprob: np.ndarray, offsets: np.ndarray,
               spans: Sequence[tuple[int, int]]) -> tuple[float, float, float]:
    """Mean, std and max of sentence perplexity: humans vary more from sentence to sentence (GPTZero's 'burstiness')."""
    ppl = sentence_perplexities(logprob, offsets, spans)
    if len(ppl) == 0:
        whole = perplexity(logprob) if len(logprob) else 0.0
        return whole, 0.0, whole
    return float(np.mean(ppl)), float(np.std(ppl)), float(np.max(ppl))


def token_sentence_index(offsets: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Index of the sentence each token starts in (-1 for tokens outside every span)."""
    tok_pos = offsets[:, 0] if len(offsets) else np.zeros(0, dtype=np.int64)
    if not len(spans):  # no sentences at all: indexing ``ends`` below would fail on an empty array
        return np.full(len(tok_pos), -1, dtype=np.int64)
    starts = np.asarray([s for s, _ in spans], dtype=np.int64)
    ends = np.asarray([e for _, e in spans], dtype=np.int64)
    # a token starting on whitespace belongs to the sentence of its first visible character
    idx = np.searchsorted(starts, tok_pos, side="right") - 1
    inside = (idx >= 0) & (tok_pos < np.where(idx >= 0, ends[np.clip(idx, 0, None)], 0))
    nxt = np.clip(idx + 1, 0, max(len(starts) - 1, 0))
    # tokens in the gap before a sentence (leading space) are given to the next sentence
    return np.where(inside, idx, np.where(nxt < len(starts), nxt, -1))


def diversity_entropy(series: np.ndarray, m: int = MDE_EMBED_DIM, tau: int = MDE_DELAY,
                      bins: int = MDE_BINS) -> float:
    """Diversity entropy (Wang et al., 2020): normalised Shannon entropy of the cosine similarities between
    consecutive m-dimensional delay-embedding vectors of ``series``, binned over [-1, 1]. 0 when too short.
    """
    x = np.asarray(series, dtype=np.float64)
    n_vec = len(x) - (m - 1) * tau
    if n_vec < 3:
        return 0.0
    emb = np.stack([x[j * tau: j * tau + n_vec] for j in range(m)], axis=1)
    a, b = emb[:-1], emb[1:]
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(denom > 0, np.einsum("ij,ij->i", a, b) / np.where(denom > 0, denom, 1.0), 1.0)
    counts, _ = np.histogram(np.clip(cos, -1.0, 1.0), bins=bins, range=(-1.0, 1.0))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(bins))


def multiscale_diversity_entropy(logprob: np.ndarray, scales: int = MDE_SCALES) -> np.ndarray:
    """Diversity entropy of the log-prob series coarse-grained by a moving average of width 1..``scales``
    (Xu et al., 2024, Lastde: "Training-free LLM-generated text detection by mining token probability sequences").
    """
    x = np.asarray(logprob, dtype=np.float64)
    out = []
    for s in range(1, scales + 1):
        coarse = np.convolve(x, np.ones(s) / s, mode="valid") if len(x) >= s else x[:0]
        out.append(diversity_entropy(coarse))
    return np.asarray(out)


def lastde(logprob: np.ndarray) -> tuple[float, float]:
    """(std of the multiscale diversity entropy, Lastde score = mean log-prob / that std) (Xu et al., 2024).

    Machine text has higher log-likelihood and a more regular local shape of its log-prob series across
    scales; the ratio combines both. The std is floored (``LASTDE_MIN_SPREAD``) so short or constant series
    do not blow the ratio up.
    """
    spread = float(np.std(multiscale_diversity_entropy(logprob)))
    return spread, float(np.mean(logprob) / max(spread, LASTDE_MIN_SPREAD))


def surprisal_shape(logprob: np.ndarray) -> tuple[float, ...]:
    """DivEye's diversity statistics of the surprisal series -log p (Basani et al., 2025, "Diversity boosts
    AI-generated text detection"): std, skewness, excess kurtosis, mean |first difference|, std of first and
    second differences, lag-1 autocorrelation. Human surprisal is burstier and less regular than machine text's.
    """
    s = -np.asarray(logprob, dtype=np.float64)
    n = len(s)
    std = float(np.std(s))
    if n < 3 or std == 0.0:
        return (std, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    z = (s - s.mean()) / std
    d1, d2 = np.diff(s), np.diff(s, n=2)
    auto = float(np.mean(z[:-1] * z[1:]))
    return (std, float(np.mean(z ** 3)), float(np.mean(z ** 4) - 3.0), float(np.mean(np.abs(d1))),
            float(np.std(d1)), float(np.std(d2)), auto)


def per_character(logprob: np.ndarray, entropy: np.ndarray, offsets: np.ndarray) -> tuple[float, float, float]:
    """(log-prob per character, entropy per character, characters per token) over the scored characters.

    Per-token means depend on how the tokenizer cut the text: rare words are cut into more pieces, each easier
    to predict than the word. Per character, the log-likelihood is the tokenizer-independent "bits per byte"
    of Gao et al. (2020, The Pile), here per character. Characters per token is the tokenizer's own
    compression ratio: text of frequent words compresses better, the premise of compression-based detectors
    (ZipPy, Thinkst 2023; AIDetx, Almeida et al., 2024). On the English training data both travel to a held-out
    source better than the per-token mean (``training.backbone_comparison``'s feature table).
    """
    n = len(logprob)
    if n == 0:
        return (0.0, 0.0, 0.0)
    offsets = np.asarray(offsets).reshape(-1, 2)
    chars = max(int(offsets[:, 1].max() - offsets[:, 0].min()), 1)
    return (float(np.sum(logprob)) / chars, float(np.sum(entropy)) / chars, chars / n)


def extract_features(stats: TokenStats, spans: Sequence[tuple[int, int]]) -> dict[str, float]:
    """The named zero-shot feature vector of one text (see FEATURE_NAMES)."""
    lp, rank, ent, var = stats.logprob, stats.rank, stats.entropy, stats.var_ref
    n = len(lp)
    if n == 0:
        return {name: 0.0 for name in FEATURE_NAMES}
    b = gltr_buckets(rank)
    fdg = fast_detectgpt(lp, ent, var)
    burst = burstiness(lp, stats.offsets, spans)
    values = (mean_logprob(lp), perplexity(lp), mean_log_rank(rank), mean_entropy(ent),
              log_likelihood_log_rank_ratio(lp, rank), *b, fdg, fdg / np.sqrt(n), *burst, float(n),
              *lastde(lp), *surprisal_shape(lp), *per_character(lp, ent, stats.offsets))
    return dict(zip(FEATURE_NAMES, (float(v) for v in values)))
