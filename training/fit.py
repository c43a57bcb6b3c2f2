"""Step 4 of training: fit the trainable parts of one design on given rows.

* the head (``fit_head``): a linear or routed probe on the pooled states, with cross-fitted logits for its own
  rows, or fine-tuned top blocks (resumable checkpoints);
* the document combiners (``fit_combiners``): zero-shot features + the head's logit, the zero-shot features
  alone, and the best single zero-shot feature, each calibrated;
* the sentence model (``fit_segment_model``) that shades sentences on the page.

Fits are memoised on ``Prepared.head_fits``, so designs and folds that need the same fit share it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from detector.combiner import CalibratedCombiner
from detector.probe import LinearProbe, RoutedProbe
from detector.segments import SEGMENT_FEATURE_NAMES, SEGMENT_LOG_FEATURES, sentence_segment_features
from detector.sentences import sentence_spans
from training.config import Config
from training.designs import BlocksDesign, Design, ProbeDesign
from training.generalization import best_zero_shot
from training.prepared import Prepared
from training.train_head import HeadTrainer

# Features passed through log1p before scaling (heavy-tailed).
LOG_FEATURES = ("perplexity", "burstiness_mean_ppl", "burstiness_std_ppl", "burstiness_max_ppl", "n_tokens")
MAX_SEGMENTS = 8000  # sentences used to fit the segment model

# A fitted head: a probe, or the trainer holding fine-tuned blocks.
Head = LinearProbe | RoutedProbe | HeadTrainer


def fit_head(data: Prepared, fit: np.ndarray, design: Design, cfg: Config) -> tuple[Head, np.ndarray]:
    """The design's head fit on ``fit`` rows and its logit for every row."""
    if isinstance(design, BlocksDesign):
        return fit_blocks(data, fit, design, cfg.cached_depth(data.backbone.num_layers), seed=cfg.seed)
    return fit_probe(data, fit, design, seed=cfg.seed)


def fit_probe(data: Prepared, fit: np.ndarray, design: ProbeDesign, folds: int = 5,
              seed: int = 0) -> tuple[LinearProbe | RoutedProbe, np.ndarray]:
    """Linear probe fit on ``fit`` rows (sources weighted equally; a routed probe: one per source); logits for
    every row.

    The logits of the ``fit`` rows themselves are cross-fitted (each from a probe that did not see it), so the
    combiner can be fit on training and calibration rows together without trusting in-sample head scores.
    Memoised on ``data`` per rows and probe settings: designs that differ only in the combiner share probes.
    """
    key = (design.C, design.layers, design.routed, folds, seed, fit.tobytes())
    if key in data.head_fits:
        probe, logits = data.head_fits[key]
        return probe, logits.copy()
    src = data.rows["source"].to_numpy()
    pooled = data.pooled[:, [data.layers.index(j) for j in design.layers]]
    kind = RoutedProbe if design.routed else LinearProbe
    probe = kind(design.layers, C=design.C).fit(pooled[fit], data.y[fit], src[fit])
    logits = probe.decision_function(pooled)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(fit, data.y[fit]):
        part = kind(design.layers, C=design.C).fit(pooled[fit[tr]], data.y[fit[tr]], src[fit[tr]])
        logits[fit[te]] = part.decision_function(pooled[fit[te]])
    data.head_fits[key] = (probe, logits.copy())
    return probe, logits


def blocks_checkpoint(data: Prepared, fit: np.ndarray, design: BlocksDesign, cached_k: int, seed: int = 0) -> Path:
    """Where a fine-tuned head's resumable checkpoint lives: ``runs/<name>/heads/``, named by a hash of its
    settings, its training rows and the cached states it reads (backbone identity and precision)."""
    lm = data.backbone
    settings = repr(("blocks", design.k, design.epochs, design.lr, seed, lm.identity, lm.precision, cached_k))
    tag = hashlib.sha256(settings.encode() + np.asarray(fit, dtype=np.int64).tobytes()).hexdigest()[:16]
    return Path(data.run_dir or ".") / "heads" / f"k{design.k}-{tag}.ckpt"


def fit_blocks(data: Prepared, fit: np.ndarray, design: BlocksDesign, cached_k: int,
               seed: int = 0) -> tuple[HeadTrainer, np.ndarray]:
    """Fine-tune the top ``design.k`` blocks on ``fit`` rows; logits for every row (in-sample on ``fit``).

    Resumable: the trainer checkpoints every epoch (``blocks_checkpoint``), and the finished head's logits are
    kept beside the checkpoint. Memoised on ``data`` like the probes.
    """
    checkpoint = blocks_checkpoint(data, fit, design, cached_k, seed)  # names settings, rows and states
    key = ("blocks", checkpoint)
    if key in data.head_fits:
        trainer, logits = data.head_fits[key]
        return trainer, logits.copy()
    trainer = HeadTrainer(data.backbone.model, design.k, cached_k, lr=design.lr, epochs=design.epochs, seed=seed,
                          device=data.backbone.device)
    hiddens = [r["hidden"] for r in data.records]
    trainer.fit([hiddens[i] for i in fit], [int(data.y[i]) for i in fit], checkpoint=checkpoint)
    logits_path = checkpoint.with_suffix(".logits.npy")
    if logits_path.exists():
        logits = np.load(logits_path)
    else:
        logits = np.asarray(trainer.predict(hiddens)[0], dtype=np.float64)
        np.save(logits_path, logits)
    data.head_fits[key] = (trainer, logits.copy())
    return trainer, logits


def combined_matrix(data: Prepared, logits: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
    """Zero-shot features and the head's logit, as columns ``names`` (default: all of them, logit last)."""
    full = np.column_stack([data.Z, logits])
    if names is None:
        return full
    order = list(data.features) + ["classifier_logit"]
    return full[:, [order.index(n) for n in names]]


def fit_combiners(data: Prepared, logits: np.ndarray, rows: np.ndarray, seed: int, zero_shot: str = "all",
                  calibration: str = "platt", min_tokens: int = 0) -> tuple[CalibratedCombiner, CalibratedCombiner,
                                                                            CalibratedCombiner]:
    """(zero-shot + head, zero-shot only, best single zero-shot feature) combiners, all fit on ``rows``.

    The single feature is the one with the best AUROC on ``rows`` (direction fixed there): the evidence the
    detector must never lose to, and the anchor its blend shrinks toward. ``zero_shot="best"``: the first
    combiner sees only that feature beside the head's logit (see ``ProbeDesign``). ``min_tokens``: their
    calibrators learn from the texts the detector answers (``CalibratedCombiner.calibrate_from``).
    """
    names = list(data.features)
    best, _ = best_zero_shot(data.y, data.Z, names, rows, rows)
    full_names = (names if zero_shot == "all" else [best]) + ["classifier_logit"]
    n = data.n_tokens[rows]

    def combiner(features: list[str]) -> CalibratedCombiner:
        return CalibratedCombiner(features, LOG_FEATURES, calibration=calibration, random_state=seed,
                                  calibrate_from=min_tokens)

    full = combiner(full_names).fit(combined_matrix(data, logits, full_names)[rows], data.y[rows], n)
    zero_shot_model = combiner(names).fit(data.Z[rows], data.y[rows], n)
    single = combiner([best]).fit(data.Z[rows][:, [names.index(best)]], data.y[rows], n)
    return full, zero_shot_model, single


def fit_segment_model(data: Prepared, cal: np.ndarray, design: Design, head: Head,
                      seed: int) -> CalibratedCombiner:
    """The sentence model, fit on sentences of the ``cal`` rows labelled with their document's label.

    A fine-tuned head's per-token logits are in the cache's reach (its hidden state is kept), so its sentences
    carry their own classifier score; the probe's per-token logits need per-layer token states the cache does
    not keep, so with a probe sentences are scored from their token statistics only.
    """
    rng = np.random.default_rng(seed)
    cal_records = [data.records[i] for i in cal]
    if isinstance(design, BlocksDesign):
        token_logits = head.predict([r["hidden"] for r in cal_records])[1]  # behind its frozen bridge
        seg_names = list(SEGMENT_FEATURE_NAMES)
    else:
        token_logits = [None] * len(cal_records)
        seg_names = [n for n in SEGMENT_FEATURE_NAMES if n != "classifier_logit"]
    seg_x, seg_y = segment_rows(cal_records, token_logits, data.y[cal], rng)
    segment = CalibratedCombiner(seg_names, SEGMENT_LOG_FEATURES, random_state=seed)
    segment.fit(segment.matrix(seg_x), seg_y)
    return segment


def segment_rows(records: list[dict], token_logits: list[torch.Tensor | None], labels: np.ndarray,
                 rng: np.random.Generator) -> tuple[list[dict[str, float]], np.ndarray]:
    """Sentence feature dicts labelled with their document's label (a sample of MAX_SEGMENTS)."""
    feats, ys = [], []
    for rec, tok, y in zip(records, token_logits, labels):
        rows = sentence_segment_features(rec["logprob"], rec["rank"], rec["entropy"], rec["var_ref"], rec["offsets"],
                                         None if tok is None else tok.numpy(), sentence_spans(rec["text"]))
        for r in rows:
            if r is not None:
                feats.append(r)
                ys.append(y)
    idx = rng.permutation(len(feats))[:MAX_SEGMENTS]
    return [feats[i] for i in idx], np.asarray(ys)[idx]
