"""The detector: normalise -> one LM pass -> features + fine-tuned head -> calibrated P(AI) and a verdict.

Shaped like a Hugging Face pipeline: ``preprocess`` (normalise, language, abstentions),
``forward`` (one batched LM pass, plus the head on its hidden state) and ``postprocess``
(features, combiner, thresholds, sentence segments), with JSON-friendly ``Score`` results.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from detector.bundle import DEFAULT_BUNDLE, Bundle, BundleError, find_bundle_for_lm, resolve_bundle_path
from detector.combiner import adjust_for_prior, displayed_probability
from detector.features import FEATURE_NAMES, extract_features
from detector.language import detect_language, is_supported
from detector.lm import LanguageModel, load_lm, resolve_dtype
from detector.normalize import normalize_text
from detector.score import (
    AI,
    ERROR,
    HUMAN,
    INSUFFICIENT_TEXT,
    UNCERTAIN,
    UNSUPPORTED_LANGUAGE,
    Score,
    Segment,
    TokenView,
)
from detector.segments import sentence_segment_features
from detector.sentences import sentence_spans
from detector.thresholds import threshold_at_fpr
from detector.token_stats import TokenStats, compute_token_stats
from detector.tuned_top import tuned_discrepancy
from detector.witness import witness_statistic

# Characters kept from one text before tokenising: far more than max_tokens needs, bounded memory.
MAX_TEXT_CHARS = 100_000

_CACHE: dict[tuple[str, str, str, str], Detector] = {}
_CACHE_LOCK = threading.Lock()


# Evidence a bundle may add from the same pass (``manifest["evidence"]``): the analytic discrepancy of the
# discrepancy-trained top blocks (``detector.tuned_top``) and AdaDetectGPT's witness statistic (``detector.witness``).
TRAINED_EVIDENCE = ("tuned_discrepancy", "witness")


def score_feature_names() -> list[str]:
    """The names of ``Score.features`` every bundle gives: every zero-shot feature, then the head's
    ``classifier_logit`` (a bundle with trained evidence adds those names, ``Detector.feature_names``)."""
    return [*FEATURE_NAMES, "classifier_logit"]


def bundle_feature_names(evidence: Mapping[str, object]) -> list[str]:
    """The names of ``Score.features`` from a bundle whose manifest lists ``evidence`` (its
    ``manifest["evidence"]``): ``score_feature_names`` and then each trained evidence the bundle carries."""
    return score_feature_names() + [name for name in TRAINED_EVIDENCE if evidence.get(name)]


def decide(p: float, n_tokens: int, min_tokens: int, threshold_ai: float, threshold_human: float) -> str:
    """The verdict rule: abstain below ``min_tokens``, else ai / human / uncertain by the two thresholds."""
    if n_tokens < min_tokens:
        return INSUFFICIENT_TEXT
    return AI if p >= threshold_ai else HUMAN if p <= threshold_human else UNCERTAIN


@dataclass
class _Prepared:
    text: str
    warnings: list[str] = field(default_factory=list)
    lang: str | None = None
    verdict: Score | None = None  # set when the text never reaches the model


class Detector:
    """A loaded bundle on its backbone. Thread-safe: one LM pass runs at a time."""

    def __init__(self, bundle: Bundle, lm: LanguageModel) -> None:
        bundle.check_backbone(lm)
        self.bundle = bundle
        self.lm = lm
        self.head = bundle.build_head(lm)
        manifest = bundle.manifest
        if lm.precision == "int8" and manifest.get("precision") != "int8":
            warnings.warn(f"bundle {bundle.name!r} was calibrated at {manifest.get('precision', 'float32')}; int8 "
                          "moves per-token log-probs by ~0.2 nats (reports/precision.md), so its probabilities and "
                          "thresholds are not calibrated for it", stacklevel=2)
        self.max_tokens = int(manifest["max_tokens"])
        # Two head kinds: a linear probe on token-mean states of a few layers, or fine-tuned top-k blocks.
        self.head_kind = str(manifest["head"].get("kind", "blocks"))
        self.token_layers = tuple(manifest["head"]["layers"]) if self.head_kind == "probe" else ()
        self.hidden_layer = None if self.head_kind == "probe" else lm.num_layers - int(manifest["head"]["k"])
        # The fork: the tuned top blocks run on the hidden state entering them, shared with the untuned pass.
        self.fork = bundle.build_fork(lm)
        if self.fork is not None:
            if self.hidden_layer not in (None, lm.num_layers - self.fork.k):
                raise BundleError("a fine-tuned blocks head and the tuned fork must start at the same block")
            self.hidden_layer = lm.num_layers - self.fork.k
        witness = manifest.get("evidence", {}).get("witness")
        self.witness_beta = None if not witness else np.asarray(witness["beta"], dtype=np.float64)
        self.languages = list(manifest["languages"])
        thresholds = manifest["thresholds"]
        self.threshold_ai = float(thresholds["ai"])
        self.threshold_human = float(thresholds["human"])
        self.min_tokens = int(thresholds["min_tokens"])
        self.target_fpr = float(thresholds["target_fpr"])
        # the human groups the `ai` rule is strictest over (older bundles store the pooled humans only)
        calibration = manifest["calibration_probs"]
        groups = calibration.get("ai_line_groups") or {"all": calibration["human"]}
        self._ai_line_groups = {k: np.asarray(v, dtype=np.float64) for k, v in groups.items()}
        self._lock = threading.Lock()

    def ai_line(self, target_fpr: float | None = None) -> float:
        """The P(AI) an ``ai`` verdict needs: the bundle's line, or the line the bundle's own rule gives at
        ``target_fpr``.

        The rule is the strictest ``target_fpr`` line over every human group the bundle measured (all humans,
        each source, each length bucket, each source as if unseen), so a caller's target keeps the per-writer
        promise of the shipped line; at the bundle's own target it is the shipped line. A line over the pooled
        humans alone would not: a pooled rate can hide a much higher one for a kind of writer, such as
        non-native writers (``training/writer_bias.py``; see docs/decisions.md).
        """
        if target_fpr is None:
            return self.threshold_ai
        line = max(threshold_at_fpr(p, target_fpr) for p in self._ai_line_groups.values())
        if target_fpr <= self.target_fpr:  # a stricter target never loosens the shipped line (older bundles)
            line = max(line, self.threshold_ai)
        return line

    @classmethod
    def load(cls, bundle: str | Path | None = None, lm: str | None = None, device: str | None = None,
             dtype: str | None = None) -> Detector:
        """Load one bundle and its backbone; repeated loads reuse both.

        ``bundle``: a bundle name under ``detector/bundles/`` or a bundle folder; ``lm`` alone picks the shipped
        bundle trained on that backbone; neither: the default bundle (``detector.bundle.DEFAULT_BUNDLE``).
        Every text is scored with this one bundle. To send each text to the bundle for its language, use
        ``detector.load()``, which returns a ``detector.router.Router``: a layer above this class.
        ``dtype``: the backbone's precision, ``auto`` | ``float32`` | ``bfloat16`` | ``int8`` (experimental, never
        chosen by ``auto``; default: $DETECTOR_DTYPE, else ``auto``: bf16 where the CPU/GPU runs it natively).
        The head always runs in fp32.
        """
        if bundle is None:
            path = resolve_bundle_path(DEFAULT_BUNDLE) if lm is None else find_bundle_for_lm(lm)
        else:
            path = resolve_bundle_path(bundle)
        torch_dtype = resolve_dtype(dtype, device or ("cuda" if torch.cuda.is_available() else "cpu"))
        key = (str(path.resolve()), str(lm), str(device), str(torch_dtype))
        with _CACHE_LOCK:
            if key not in _CACHE:
                loaded = Bundle.load(path)
                spec = lm or loaded.manifest["backbone"]["spec"]
                _CACHE[key] = cls(loaded, load_lm(spec, device=device, dtype=torch_dtype))
            return _CACHE[key]

    @property
    def precision(self) -> str:
        """The backbone precision this detector runs at ('float32' / 'bfloat16')."""
        return self.lm.precision

    @property
    def feature_names(self) -> list[str]:
        """Every feature a Score carries (the batch command's feature columns): all zero-shot features, the
        head's logit and the bundle's trained evidence, whichever of them this bundle's combiner uses."""
        return bundle_feature_names(self.bundle.manifest.get("evidence", {}))

    @property
    def bundles(self) -> dict[str, str]:
        """Language -> bundle name (as ``Router.bundles``): here every language is this one bundle's."""
        return dict.fromkeys(self.languages, self.bundle.name)

    def detector_for_bundle(self, name: str | None) -> Detector:
        """The Detector that scored a Score with ``Score.bundle == name`` (as ``Router.detector_for_bundle``)."""
        return self

    # -- public API -------------------------------------------------------------------------
    def score(self, text: str, *, prior: float | None = None, target_fpr: float | None = None,
              return_tokens: bool = False) -> Score:
        """Score one text; see ``score_many``."""
        return self.score_many([text], prior=prior, target_fpr=target_fpr, return_tokens=return_tokens)[0]

    def score_many(self, texts: Sequence[str], batch_size: int = 8, *, prior: float | None = None,
                   target_fpr: float | None = None, return_tokens: bool = False) -> list[Score]:
        """Score texts in length-sorted batches.

        ``prior``: the base rate of AI text in your population (default: the calibration set's);
        ``target_fpr``: the share of human texts you accept being called ``ai`` (default: the bundle's 1%).
        """
        prepared = [self.preprocess(t) for t in texts]
        todo = [i for i, p in enumerate(prepared) if p.verdict is None]
        outputs = self.forward([prepared[i].text for i in todo], batch_size=batch_size)
        results: list[Score] = [p.verdict for p in prepared]  # type: ignore[misc]
        for i, (stats, token_logits) in zip(todo, outputs):
            results[i] = self.postprocess(prepared[i], stats, token_logits, prior=prior, target_fpr=target_fpr,
                                          return_tokens=return_tokens)
        return results

    # -- pipeline steps ---------------------------------------------------------------------
    def preprocess(self, text: str) -> _Prepared:
        """Normalise, identify the language, and abstain early where the model need not run."""
        if not isinstance(text, str):
            return _Prepared("", verdict=Score(None, ERROR, error=f"expected str, got {type(text).__name__}"))
        warnings: list[str] = []
        if len(text) > MAX_TEXT_CHARS:
            text = text[:MAX_TEXT_CHARS]
            warnings.append(f"text_truncated_to_{MAX_TEXT_CHARS}_chars")
        norm = normalize_text(text)
        warnings += norm.warnings
        if not norm.text:
            return _Prepared("", warnings, verdict=Score(None, INSUFFICIENT_TEXT, warnings=warnings + ["empty_text"],
                                                         error="the text is empty"))
        lang, conf = detect_language(norm.text)
        if not is_supported(lang, conf, self.languages, norm.text):
            return _Prepared(norm.text, warnings, lang, verdict=Score(
                None, UNSUPPORTED_LANGUAGE, lang=lang, text=norm.text, warnings=warnings,
                error=f"language {lang!r} is not supported by bundle {self.bundle.name!r} ({self.languages})"))
        return _Prepared(norm.text, warnings, lang)

    def forward(self, texts: Sequence[str], batch_size: int = 8) -> list[tuple[TokenStats, np.ndarray]]:
        """One LM pass per text (batched) and the trained head on its hidden states (per-token logits)."""
        if not texts:
            return []
        with self._lock, torch.inference_mode():
            stats = compute_token_stats(self.lm, texts, max_tokens=self.max_tokens, batch_size=batch_size,
                                        hidden_layer=self.hidden_layer, token_layers=self.token_layers,
                                        witness=self.witness_beta is not None)
            out = []
            for st in stats:
                self._trained_evidence(st)
                if self.head_kind == "probe":
                    st.hidden = None  # the fork has read it
                    out.append((st, self.head.token_logits(st.layer_states)))
                    st.layer_states = None  # not needed any more; keeps batch memory flat
                    continue
                hidden = st.hidden.to(self.lm.device, torch.float32)[None]
                mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=self.lm.device)
                _, token_logits = self.head(hidden, mask)
                st.hidden = None  # not needed any more; keeps batch memory flat
                out.append((st, token_logits[0, 1:].float().cpu().numpy()))
        return out

    def _trained_evidence(self, st: TokenStats) -> None:
        """The bundle's trained evidence from this pass into ``st.evidence``; the per-token witness moments are
        dropped once summed."""
        if self.fork is not None:
            st.evidence["tuned_discrepancy"] = tuned_discrepancy(self.fork, self.lm, st.hidden, st.token_ids)
        if self.witness_beta is not None:
            st.evidence["witness"] = witness_statistic(st.witness_residual, st.witness_cov, self.witness_beta)
            st.witness_residual = st.witness_cov = None

    def postprocess(self, prep: _Prepared, stats: TokenStats, token_logits: np.ndarray, *,
                    prior: float | None = None, target_fpr: float | None = None,
                    return_tokens: bool = False) -> Score:
        """Features + classifier logit -> calibrated P(AI), verdict, sentence segments."""
        warnings = list(prep.warnings)
        if stats.truncated:
            warnings.append(f"scored_first_{self.max_tokens}_tokens_only")
        spans = sentence_spans(prep.text)
        features = extract_features(stats, spans)
        features["classifier_logit"] = float(np.mean(token_logits)) if len(token_logits) else 0.0
        features.update(stats.evidence)
        combiner = self.bundle.combiner
        p_raw = float(combiner.predict_rows([features])[0])  # uncapped: the lines compare with this
        t_ai = self.ai_line(target_fpr)
        t_human = min(self.threshold_human, t_ai)
        p = p_raw if prior is None else float(adjust_for_prior(p_raw, prior, combiner.base_rate_))
        shift = (lambda t: t) if prior is None else (lambda t: float(adjust_for_prior(t, prior, combiner.base_rate_)))
        label = decide(p_raw, stats.n_tokens, self.min_tokens, t_ai, t_human)
        prob = None if label == INSUFFICIENT_TEXT else float(displayed_probability(p))
        if prob is None:
            warnings.append(f"too_short_for_a_verdict_{stats.n_tokens}_of_{self.min_tokens}_tokens")
        segments = self._segments(stats, token_logits, spans, prior) if prob is not None else \
            [Segment(s, e, None) for s, e in spans]
        tokens = None
        if return_tokens:
            tokens = [TokenView(int(a), int(b), int(r), float(np.exp(lp)))
                      for (a, b), r, lp in zip(stats.offsets, stats.rank, stats.logprob)]
        return Score(prob_ai=prob, label=label, n_tokens=stats.n_tokens, lang=prep.lang, bundle=self.bundle.name,
                     features=features,
                     segments=segments, warnings=warnings, text=prep.text, tokens=tokens,
                     threshold_ai=shift(t_ai), threshold_human=shift(t_human))

    def _segments(self, stats: TokenStats, token_logits: np.ndarray, spans: list[tuple[int, int]],
                  prior: float | None) -> list[Segment]:
        seg_model = self.bundle.segment_combiner
        rows = sentence_segment_features(stats.logprob, stats.rank, stats.entropy, stats.var_ref, stats.offsets,
                                         token_logits, spans)
        probs: list[float | None] = [None] * len(spans)
        known = [i for i, r in enumerate(rows) if r is not None]
        if seg_model is not None and known:
            p = seg_model.predict_proba(seg_model.matrix([rows[i] for i in known]))[:, 1]
            if prior is not None:
                p = adjust_for_prior(p, prior, seg_model.base_rate_)
            for i, value in zip(known, displayed_probability(p)):
                probs[i] = float(value)
        return [Segment(s, e, pr) for (s, e), pr in zip(spans, probs)]


__all__ = ["Detector", "BundleError", "decide"]
