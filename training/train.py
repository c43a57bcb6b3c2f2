"""Train a bundle from scratch, resumably: ``python -m training.train`` (see --help).

Steps (an interrupted run picks up where it stopped):
1. load the texts of one language, split by prompt into train/cal/test, sample (``runs/<name>/rows.jsonl``,
   ``split.json``);
2. one LM pass per text -> token statistics and pooled hidden states, cached in resumable shards under the
   user cache directory (``training.featurize``);
3. choose the head (linear or routed probe: regularisation, depths; with ``--heads probe routed blocks`` also
   fine-tuned top blocks) and its blend weight toward the best zero-shot feature by the leave-one-source-out
   table, never by the test split;
4. fit the calibrated combiner, the segment model and the decision thresholds on train + cal (cal only for a
   fine-tuned head, whose training-row logits are in-sample);
5. evaluate on test (``reports/``) and write the bundle (``detector/bundles/<name>/``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold

from detector.bundle import BUNDLES_DIR, FORMAT_VERSION, Bundle
from detector.combiner import CalibratedCombiner
from detector.features import FEATURE_NAMES, extract_features
from detector.lm import DEFAULT_LM, describe, load_lm
from detector.probe import LinearProbe, RoutedProbe
from detector.segments import SEGMENT_FEATURE_NAMES, SEGMENT_LOG_FEATURES, sentence_segment_features
from detector.sentences import sentence_spans
from detector.thresholds import threshold_at_fnr, threshold_at_fpr
from detector.token_stats import TokenStats
from training.data import ENGLISH_SOURCES, REPO_ROOT, load_sources, sample_split, source_licences, split_manifest
from training.featurize import cached_count, featurize, load_records, normalized, pass_dir, pooled_layers
from training.generalization import (
    ZERO_SHOT_MARGIN,
    best_zero_shot,
    guard_check,
    inner_source_folds,
    leave_one_generator_out,
    leave_one_source_out,
    run_folds,
)
from training.metrics import length_bucket
from training.train_head import HeadTrainer

# Features passed through log1p before scaling (heavy-tailed).
# Features that are not evidence of authorship and stay out of the document combiner. Length is a property of
# how a collection was built: Grok-3's polish lengthens DetectAnyLLM's news, ChatGPT answers run longer than
# HC3's human ones, and a combiner given `n_tokens` learns "long = AI" (it was the best single "zero-shot
# feature" of a Chinese leave-one-source-out fold). Length still matters where it should: `min_tokens`
# abstention and the per-length `ai` line. (The English bundle shipped before this rule still has it.)
NOT_EVIDENCE = ("n_tokens",)
COMBINER_FEATURES = tuple(n for n in FEATURE_NAMES if n not in NOT_EVIDENCE)
# Zero-shot features measured but kept out of the shipped bundles' combiners by default (``--exclude-features``
# sets the list; pass it with no names to use every feature). On the English data the per-character features
# lifted the leave-one-source-out mean from 0.714 to 0.726, but cost 0.008 test AUROC, 0.037 TPR at 1% FPR and
# a third of the `ai` verdicts, and with ``chars_per_token`` the unseen-source `ai` line reached the
# calibrator's 0.999 cap: no `ai` verdict at all. On Chinese: leave-one-source-out 0.705 -> 0.716, test AUROC
# 0.865 -> 0.816. README, "Accuracy".
NOT_SHIPPED = ("logprob_per_char", "entropy_per_char", "chars_per_token")
LOG_FEATURES = ("perplexity", "burstiness_mean_ppl", "burstiness_std_ppl", "burstiness_max_ppl", "n_tokens")
TARGET_FPR = 0.01  # share of human calibration texts allowed at or above the `ai` threshold
TARGET_FNR = 0.01  # share of AI calibration texts allowed at or below the `human` threshold
MIN_TOKEN_CANDIDATES = (16, 32, 64, 128)  # lower edges of the length buckets tried for `insufficient_text`
MIN_BUCKET_AUROC = 0.85  # a length bucket below this AUROC on cal is "where accuracy collapses"
MAX_SEGMENTS = 8000  # sentences used to fit the segment model
# Probe regularisation tried by the grid. Stronger L2 travels better: the English probe alone, leave-one-source-
# out mean AUROC 0.688 at C=0.002, 0.701 at 0.0005, 0.707 at 0.0001 (a one-off check on the cached pass,
# 2026-11-30). 0.0005 joins the two the grid had; gemma3-zh picked 0.01 once its calibrators learned from the
# answered texts only.
PROBE_C_GRID = (0.0005, 0.002, 0.01)
# Routed probes (one expert per training source + a source router, ``detector.probe.RoutedProbe``), in the default
# grid since 2026-11-30 (``--heads probe`` leaves them out). English, head alone, C=0.0005: test AUROC 0.913 ->
# 0.942, leave-one-source-out mean 0.701 -> 0.719. In the full grid the best routed design won on held-out sources
# (0.729 vs 0.725; leave-one-generator-out 0.870 vs 0.850) and on the test split (AUROC 0.919 -> 0.939, TPR@1%FPR
# 0.420 -> 0.474). It first lost because its `ai` line sat at the calibrator's 0.999 cap (1.3% of DetectRL's fit
# humans scored there); with the line set on the uncapped score (``detector.combiner.PROB_FLOOR``) it ships.
ROUTED_C_GRID = (0.0005, 0.002)
# Fine-tuned top-blocks head (``--heads ... blocks``): depth, epochs and learning rate of the blocks. Three epochs
# at 5e-5 were what the Chinese experiment used (train loss 0.65 -> 0.43 -> 0.28, still falling).
BLOCKS_EPOCHS = 3
BLOCKS_LR = 5e-5
# Weight of the (zero-shot + head) model against the best single zero-shot feature's model (0 = that feature).
BLEND_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
# Document probabilities are calibrated with Platt scaling: strictly monotone, so the 1%-FPR `ai` line can fall
# between any two texts. Isotonic calibration won on Brier here but maps the most AI-like texts and the most
# AI-like humans to one flat top step, which left no threshold below 1% FPR that flags anything.
# ``platt_length`` makes the Platt slope depend on log(length) (``detector.combiner.Calibrator``): one line over
# all lengths was under-confident on long texts (the gemma3-zh design, test split, texts >= min_tokens: ECE 0.086
# with one line, 0.058 with the length-aware one). Whether that carries to unseen sources is a design decision
# like the others: the grid tries each of ``--calibration`` (default both) and the leave-one-source-out table
# decides.
CALIBRATIONS = ("platt", "platt_length")
# Which texts the document calibration learns from (``--calibrate-on``). The detector gives no probability below
# `min_tokens`, so calibrating on the answered texts alone fits what users see: gemma3-zh's ECE on its answered
# test texts fell from 0.089 to 0.039. It is not the default because the leave-one-source-out table, which
# scores every length, preferred calibrating on all of them for English: the best design's mean fell from
# 0.714 to 0.692, and every blend above 0.25 lost the zero-shot guard (README, "Calibration").
CALIBRATE_ON = ("all", "answered")
MIN_GROUP_HUMANS = 100  # a source or length bucket needs this many human fit texts to set its own `ai` line
# A design is shipped only if, on every leave-one-source-out fold, the fold's own `ai` line (set by the rule
# above on the other sources) accuses at most this share of the held-out source's humans: the bar for
# test humans, asked of writers of a kind the model never saw.
MAX_HELDOUT_AI_FPR = 0.015


@dataclass
class Config:
    name: str = "smollm2-en"
    lm: str = DEFAULT_LM
    data_dir: str | None = None
    sources: tuple[str, ...] = ENGLISH_SOURCES
    lang: str = "en"
    sizes: tuple[int, int, int] = (10600, 2000, 2400)
    source_weights: tuple[tuple[str, float], ...] = (("DetectRL", 0.4), ("HC3-Plus", 0.2), ("Lastde", 0.25),
                                                     ("OUTFOX", 0.15))
    max_tokens: int = 256
    # Texts shorter than this (characters, stripped) are not sampled. HC3-Plus's Chinese rewrites are single
    # sentences (median ~25 characters) that the detector answers `insufficient_text`; left in, they would fill
    # most of a Chinese sample and the LM pass. 0 keeps every text (the English default).
    min_chars: int = 0
    cached_k: int = 4  # the LM pass keeps the input of block L - cached_k: heads up to this depth train from it
    batch_size: int = 8
    seed: int = 0
    runs_dir: str = str(REPO_ROOT / "runs")
    bundle_dir: str | None = None
    reports_dir: str = str(REPO_ROOT / "reports")
    device: str | None = None
    pass_only: bool = False
    partial: bool = False  # train on the texts whose LM pass is cached so far (the rest: a later run)
    heads: tuple[str, ...] = ("probe", "routed")  # head families in the design grid: "probe", "routed", "blocks"
    block_k: tuple[int, ...] = (4,)  # depths of the fine-tuned blocks heads tried (<= cached_k)
    calibration: tuple[str, ...] = CALIBRATIONS  # the grid tries each: "platt", "platt_length" (slope ~ log length)
    exclude_features: tuple[str, ...] = NOT_SHIPPED  # zero-shot features kept out of the combiner
    # "answered": calibrators learn from, and `ai` lines guard, only texts of >= min_tokens (measured first), in
    # every fold too; "all": every length (see CALIBRATE_ON)
    calibrate_on: str = "all"
    worker: int = 0
    n_workers: int = 1
    pausable: bool = False  # the LM pass waits while /tmp/pause-featurize* exists (command line only)
    command: str = ""  # the command line that trained the bundle (written to the report)

    def cached_depth(self, num_layers: int) -> int:
        """How many top blocks the cached hidden state sits below (``cached_k``, at most the whole model)."""
        return min(self.cached_k, num_layers)

    def data_key(self) -> dict:
        """What the cached rows and LM pass depend on: change any and the cache is rebuilt elsewhere."""
        key = {"lm": self.lm, "sources": list(self.sources), "lang": self.lang, "sizes": list(self.sizes),
               "source_weights": dict(self.source_weights), "max_tokens": self.max_tokens, "seed": self.seed}
        if self.min_chars:
            key["min_chars"] = self.min_chars
        return key


def prepare_rows(cfg: Config, run: Path) -> pd.DataFrame:
    """Sampled, split rows (cached in rows.jsonl, pinned by config.json)."""
    run.mkdir(parents=True, exist_ok=True)
    key_path, rows_path = run / "config.json", run / "rows.jsonl"
    if rows_path.exists() and key_path.exists():
        if json.loads(key_path.read_text()) != cfg.data_key():
            raise SystemExit(f"{run} holds a run with another configuration; pass --name or delete it")
        return pd.read_json(rows_path, lines=True, dtype=False)
    df = load_sources(cfg.sources, cfg.data_dir, lang=cfg.lang)
    if cfg.min_chars:
        df = df[df["text"].str.strip().str.len() >= cfg.min_chars].reset_index(drop=True)
    sizes = dict(zip(("train", "cal", "test"), cfg.sizes))
    rows = sample_split(df, sizes, dict(cfg.source_weights) or None, seed=cfg.seed)
    rows.to_json(rows_path, orient="records", lines=True)
    (run / "split.json").write_text(json.dumps(split_manifest(rows), default=str))
    key_path.write_text(json.dumps(cfg.data_key()))
    return rows


def pass_folder(cfg: Config, lm) -> Path:
    """The LM-pass cache folder of this configuration on ``lm`` (hidden state kept at block L - cached_k)."""
    return pass_dir(lm, max_tokens=cfg.max_tokens, hidden_layer=lm.num_layers - cfg.cached_depth(lm.num_layers))


def run_pass(cfg: Config, lm, texts: list[str]) -> Path:
    """The LM pass over the normalised ``texts`` (seeded random order, so a partial pass is a fair sample)."""
    folder = pass_folder(cfg, lm)
    order = np.random.default_rng(cfg.seed).permutation(len(texts))
    print(f"[train] LM pass: {cached_count(folder, texts)}/{len(texts)} texts cached in {folder}", file=sys.stderr)
    featurize(lm, [texts[i] for i in order], folder, max_tokens=cfg.max_tokens,
              hidden_layer=lm.num_layers - cfg.cached_depth(lm.num_layers), batch_size=cfg.batch_size,
              worker=cfg.worker, n_workers=cfg.n_workers, pausable=cfg.pausable)
    return folder


def _stats(rec: dict) -> TokenStats:
    return TokenStats(token_ids=rec["token_ids"], offsets=rec["offsets"], logprob=rec["logprob"], rank=rec["rank"],
                      entropy=rec["entropy"], var_ref=rec["var_ref"], truncated=rec["truncated"])


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


def choose_min_tokens(n_tokens: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[int, list[dict]]:
    """Shortest length from which every length bucket keeps AUROC >= MIN_BUCKET_AUROC on cal."""
    from training.metrics import auroc

    edges = list(MIN_TOKEN_CANDIDATES) + [10**9]
    table = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (n_tokens >= lo) & (n_tokens < hi)
        a = auroc(y[sel], p[sel]) if sel.sum() >= 10 else float("nan")
        table.append({"min_tokens": lo, "max_tokens": hi if hi < 10**9 else None, "n": int(sel.sum()),
                      "auroc": None if np.isnan(a) else round(float(a), 4)})
    chosen = MIN_TOKEN_CANDIDATES[-1]
    for i in range(len(table) - 1, -1, -1):
        if table[i]["auroc"] is not None and table[i]["auroc"] < MIN_BUCKET_AUROC:
            break
        chosen = table[i]["min_tokens"]
    return int(chosen), table


def measure_min_tokens(cfg: Config, data: Prepared, idx: dict[str, np.ndarray]) -> tuple[int, list[dict]]:
    """``choose_min_tokens`` on the out-of-fold P(AI) of the grid's first design, fit on every length.

    Measured before the design grid because, with ``--calibrate-on answered``, the grid's calibrations learn
    from the answered texts only. The buckets sit far from the 0.85 bar whichever design measures them
    (gemma3-zh: 32-63 tokens at 0.80 and 0.81, 64-127 at 0.93 with either of the two first designs tried).
    """
    design = head_designs(cfg, data.layers)[0]
    logits = fit_head(data, idx["train"], design, cfg)[1]
    fit = combiner_rows(design, idx["train"], idx["cal"])
    full = fit_combiners(data, logits, fit, cfg.seed, design.zero_shot, cfg.calibration[0])[0]
    return choose_min_tokens(data.n_tokens[fit], data.y[fit], full.oof_proba_)


def feature_ranges(rows: list[dict[str, float]], y: np.ndarray) -> dict:
    """10th/50th/90th percentiles of each feature among human and AI cal texts (shown on the page)."""
    out = {}
    for name in rows[0]:
        values = np.asarray([r[name] for r in rows])
        out[name] = {label: [round(float(q), 4) for q in np.percentile(values[y == cls], [10, 50, 90])]
                     for label, cls in (("human", 0), ("ai", 1))}
    return out


def versions() -> dict:
    import sklearn
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__}


@dataclass
class Prepared:
    """Everything the fits need, one row per sampled text whose LM pass is cached."""

    rows: pd.DataFrame
    records: list[dict]
    zs_rows: list[dict[str, float]]
    Z: np.ndarray  # (n, len(features)) zero-shot features
    pooled: np.ndarray  # (n, len(pooled_layers), d)
    y: np.ndarray
    layers: tuple[int, ...]
    # head fits memoised by (settings, rows): designs that differ only in the combiner share their heads; and
    # each fold's fitted head + combiners (``generalization``), which the grid's checks and the final tables share
    head_fits: dict = field(default_factory=dict, repr=False)
    backbone: object = field(default=None, repr=False)  # the LM (fine-tuned heads copy its top blocks)
    run_dir: Path | None = None  # where fine-tuned heads keep their resumable checkpoints
    features: tuple[str, ...] = COMBINER_FEATURES  # the zero-shot features in Z (columns), in order

    def idx(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.rows["split"].to_numpy() == split)

    @property
    def n_tokens(self) -> np.ndarray:
        """Scored tokens per text (what a length-aware calibration reads)."""
        return self.rows["n_tokens"].to_numpy().astype(np.float64)


def prepare(cfg: Config, run_dir: Path, only: Callable[[pd.DataFrame], np.ndarray] | None = None,
            ) -> tuple[object, Prepared, Path]:
    """Rows, the LM pass (run or resumed), features; with ``cfg.partial`` only the texts already cached.

    ``only``: keep the rows it marks (a boolean mask over the sampled rows), e.g. the texts another
    backbone's pass has reached too, so two backbones are compared on the same texts.
    """
    rows = prepare_rows(cfg, run_dir)
    if only is not None:
        rows = rows[only(rows)].reset_index(drop=True)
    lm = load_lm(cfg.lm, device=cfg.device)
    texts = normalized(rows["text"].tolist())
    folder = pass_folder(cfg, lm) if cfg.partial else run_pass(cfg, lm, texts)
    records = load_records(folder, texts, with_hidden="blocks" in cfg.heads)
    have = np.asarray([r is not None for r in records])
    print(f"[train] {int(have.sum())}/{len(rows)} texts have a cached LM pass", file=sys.stderr)
    rows = rows[have].reset_index(drop=True)
    records = [r for r in records if r is not None]
    zs_rows = [extract_features(_stats(r), sentence_spans(r["text"])) for r in records]
    features = tuple(n for n in COMBINER_FEATURES if n not in cfg.exclude_features)
    Z = np.asarray([[f[n] for n in features] for f in zs_rows], dtype=np.float64)
    pooled = np.stack([r["pooled"] for r in records])
    y = (rows["label"] == "ai").to_numpy().astype(int)
    rows["n_tokens"] = [len(r["logprob"]) for r in records]
    data = Prepared(rows, records, zs_rows, Z, pooled, y, pooled_layers(lm.num_layers), backbone=lm,
                    run_dir=run_dir, features=features)
    return lm, data, folder


@dataclass(frozen=True)
class ProbeDesign:
    """One candidate head and the evidence beside it: the probe's regularisation, the cached depths it reads,
    and which zero-shot features the combiner sees next to the head's logit: ``"all"`` of them, or only
    ``"best"``, the single feature with the best AUROC on the fit rows. A combiner over 23 features can learn
    the training sources' feature directions (DetectRL's, HC3's), which do not carry to a new collection; the
    sparse one cannot, so the leave-one-source-out table decides between them."""

    C: float
    layers: tuple[int, ...]
    zero_shot: str = "all"
    routed: bool = False  # one probe per training source, mixed by a source router (``RoutedProbe``)

    @property
    def name(self) -> str:
        extra = "" if self.zero_shot == "all" else ", best zero-shot feature only"
        return f"{'routed probe' if self.routed else 'probe'} C={self.C} layers={list(self.layers)}{extra}"


@dataclass(frozen=True)
class BlocksDesign:
    """A fine-tuned copy of the backbone's top ``k`` blocks + a linear score on each token, token-mean pooled
    (``detector.classifier``), trained on the hidden state the LM pass cached. Too costly to cross-fit, so its
    training rows' logits are in-sample and the combiner is fit on calibration rows only."""

    k: int
    zero_shot: str = "all"
    epochs: int = BLOCKS_EPOCHS
    lr: float = BLOCKS_LR

    @property
    def name(self) -> str:
        extra = "" if self.zero_shot == "all" else ", best zero-shot feature only"
        return f"fine-tuned top {self.k} blocks{extra}"


def combiner_rows(design, train: np.ndarray, cal: np.ndarray) -> np.ndarray:
    """Rows the combiner is fit on: train + cal when the head's train logits are cross-fitted, else cal only."""
    return cal if isinstance(design, BlocksDesign) else np.concatenate([train, cal])


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


def fit_head(data: Prepared, fit: np.ndarray, design, cfg: Config) -> tuple[object, np.ndarray]:
    """The design's head fit on ``fit`` rows and its logit for every row."""
    if isinstance(design, BlocksDesign):
        return fit_blocks(data, fit, design, cfg.cached_depth(data.backbone.num_layers), seed=cfg.seed)
    return fit_probe(data, fit, design, seed=cfg.seed)


def head_designs(cfg: Config, layers: tuple[int, ...]) -> list:
    """Every head design of the grid: the probe designs, and routed probes and fine-tuned blocks when
    ``cfg.heads`` asks."""
    out: list = probe_designs(layers) if "probe" in cfg.heads else []
    if "routed" in cfg.heads:
        out += routed_designs(layers)
    if "blocks" in cfg.heads:
        out += [BlocksDesign(k, zs) for zs in ("all", "best") for k in cfg.block_k]
    return out


def probe_designs(layers: tuple[int, ...]) -> list[ProbeDesign]:
    """The candidates compared by leave-one-source-out mean: all cached depths or the three-quarter depth
    alone, each regularisation, all or only the best zero-shot feature beside the head."""
    return [ProbeDesign(C, ls, zs) for zs in ("all", "best") for ls in (layers, (layers[-2],)) for C in PROBE_C_GRID]


def routed_designs(layers: tuple[int, ...]) -> list[ProbeDesign]:
    """Routed probes (``--heads ... routed``) on every cached depth, all or only the best zero-shot feature."""
    return [ProbeDesign(C, layers, zs, routed=True) for zs in ("all", "best") for C in ROUTED_C_GRID]


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


def generalization(cfg: Config, data: Prepared, design, weights: Sequence[float] = (1.0,),
                   with_logo: bool = True, unseen_lines: bool = True, calibration: str | None = None,
                   min_tokens: int = 0) -> dict:
    """Leave-one-source-out (and leave-one-generator-out) tables: ``combined_w<w>`` for each blend weight w
    of the head model toward the zero-shot-only one, ``zero_shot``, ``head``.

    ``unseen_lines``: each leave-one-source-out fold sets its `ai` line as the shipped bundle does, including
    the unseen-source part (``unseen_source_line``) from folds nested inside its own training sources, so the
    held-out humans it accuses measure the shipped rule. Costs one more head fit per training source and fold.
    The returned ``"_unseen_p"`` holds, per blend weight, the held-out sources' non-test human probabilities:
    what the shipped line's unseen-source part is set from. ``calibration``: the document calibration
    (default: the first of ``cfg.calibration``). ``min_tokens``: the shipped abstention. Each fold calibrates
    on, sets its `ai` line from, and is asked to spare the held-out humans among texts at least this long: an
    abstaining detector accuses no shorter text.
    """
    calibration = calibration or cfg.calibration[0]
    names = list(data.features)
    y = data.y
    src = data.rows["source"].to_numpy()
    not_test = data.rows["split"].to_numpy() != "test"

    def fitted(fold) -> tuple:
        """The fold's head logits, head-only model and combiners. Memoised on ``data`` by design, calibration
        and rows: the design grid's verdict check and the final tables fit the same folds (nested ones too)."""
        key = ("fold", design, calibration, min_tokens, cfg.seed, fold.train.tobytes(), fold.cal.tobytes())
        if key not in data.head_fits:
            logits = fit_head(data, fold.train, design, cfg)[1]
            rows = combiner_rows(design, fold.train, fold.cal)
            head = CalibratedCombiner(["classifier_logit"], random_state=cfg.seed).fit(logits[rows, None], y[rows])
            data.head_fits[key] = (logits, head, *fit_combiners(data, logits, rows, cfg.seed, design.zero_shot,
                                                                 calibration, min_tokens))
        return data.head_fits[key]

    def zero_shot(fold) -> np.ndarray:
        return fitted(fold)[3].predict_proba(data.Z[fold.test], data.n_tokens[fold.test])[:, 1]

    def head_only(fold) -> np.ndarray:
        logits, head = fitted(fold)[:2]
        return head.predict_proba(logits[fold.test, None])[:, 1]

    def blended(fold, weight: float) -> tuple[np.ndarray, float]:
        """P(AI) of the fold's test rows and the fold's `ai` line, at this blend weight."""
        logits, _, full, _, single = fitted(fold)
        rows = combiner_rows(design, fold.train, fold.cal)
        model = CalibratedCombiner.blend(full, single, weight, y[rows])
        X = combined_matrix(data, logits, model.feature_names)[fold.test]
        return (model.predict_proba(X, data.n_tokens[fold.test])[:, 1],
                ai_line(data, rows, model.oof_proba_, min_tokens))

    def answered_humans(rows: np.ndarray) -> np.ndarray:
        """Mask over ``rows``: human texts long enough to get a verdict."""
        return (y[rows] == 0) & (data.n_tokens[rows] >= min_tokens)

    flagged: dict[tuple[str, str], tuple[int, int]] = {}
    unseen_p: dict[float, dict[str, np.ndarray]] = {w: {} for w in weights}

    def combined(weight: float, nested: bool):
        def score(fold) -> np.ndarray:
            p, t_ai = blended(fold, weight)
            if nested:
                inner = {f.name: blended(f, weight)[0][answered_humans(f.test)]
                         for f in inner_source_folds(data.rows, fold)}
                t_ai = max(t_ai, unseen_source_line(inner))
                keep = not_test[fold.test] & answered_humans(fold.test)
                unseen_p[weight]["/".join(sorted(set(src[fold.test])))] = p[keep]
            # would the fold's own `ai` line, set on its training sources, accuse the held-out humans?
            humans = answered_humans(fold.test)
            flagged[(fold.name, f"combined_w{weight}")] = (int(np.sum(p[humans] >= t_ai)), int(humans.sum()))
            return p
        return score

    def models(nested: bool) -> dict:
        out = {f"combined_w{w}": combined(w, nested) for w in weights}
        out.update({"zero_shot": zero_shot, "head": head_only})
        return out

    loso = add_heldout_ai_fpr(run_folds(leave_one_source_out(data.rows), y, models(unseen_lines),
                                        zero_shot=(data.Z, names)), flagged)
    flagged.clear()
    logo = add_heldout_ai_fpr(run_folds(leave_one_generator_out(data.rows, ("DetectRL", "Lastde")), y,
                                        models(False), zero_shot=(data.Z, names)), flagged) if with_logo else {}
    answered = f" (humans of >= {min_tokens} tokens, the ones it answers)" if min_tokens else ""
    line_note = (f"the fold's own `ai` line{answered}, set like the shipped one on the fold's fit rows: the strictest "
                 "1%-FPR line over its sources and lengths and, where it has two or more training sources, over "
                 "each of them scored by a model fit without it (nested)" if unseen_lines else
                 "the fold's own in-distribution `ai` line (strictest 1%-FPR line over its sources and lengths)")
    return {"models": list(models(False)), "head_design": design.name, "leave_one_source_out_table": loso,
            "leave_one_generator_out_table": logo, "_unseen_p": unseen_p,
            "note": "Each fold refits the head (a linear probe on train rows with cross-fitted logits, or fine-tuned "
                    "blocks on train rows) and the combiners and their calibration (on train + cal rows; cal only "
                    "for fine-tuned blocks" + (f"; calibrators on those of >= {min_tokens} tokens" if min_tokens
                                               else "") + ") without the held-out group. `combined_w<w>` is w x "
                    "(zero-shot + head model) + (1 - w) x (model of the best single zero-shot feature), "
                    f"recalibrated. `ai_fpr`: the share of the held-out group's humans at or above {line_note}: "
                    "writers of a kind it never saw. Leave-one-generator-out folds use the in-distribution line "
                    "(their humans are test-split humans of a training source). "
                    "Leave-one-source-out tests every text of the held-out source; leave-one-generator-out tests "
                    "the generator's texts against the test-split humans of its source. Best zero-shot feature: "
                    "chosen and oriented on the fold's training data."}


def unseen_source_line(held_out_humans: dict[str, np.ndarray]) -> float:
    """The `ai` line's unseen-source part: the strictest 1%-FPR line over sources, each source's humans scored
    by a model fit without that source (0 when no source has ``MIN_GROUP_HUMANS`` humans).

    Why: the in-distribution line holds for the sources it was set on, but a kind of writer the model never
    saw scores higher (DetectRL's humans held out: 1.9% accused by the in-distribution line). Setting the line
    where each training source's humans stay under 1% *as if unseen* carries the promise to new writers.
    """
    lines = [threshold_at_fpr(p, TARGET_FPR) for p in held_out_humans.values() if len(p) >= MIN_GROUP_HUMANS]
    return float(max(lines, default=0.0))


def human_groups(data: Prepared, rows: np.ndarray, p: np.ndarray, held_out_humans: dict[str, np.ndarray],
                 min_tokens: int = 0) -> dict[str, np.ndarray]:
    """Every human group the `ai` rule takes its strictest line over: all fit-row humans, each source and
    each length bucket from ``min_tokens`` on with ``MIN_GROUP_HUMANS`` humans (out-of-fold; the answered
    humans together too), and each source's humans scored by the model fit without it.

    Length buckets count only from ``min_tokens`` on: a shorter text gets ``insufficient_text``, never ``ai``,
    so its bucket cannot break the promise (with 4,942 Chinese training texts the under-32-token humans set a
    line of 0.929 where every answered group needed at most 0.895). All humans still count in the pooled and
    per-source groups. Stored in the bundle, the groups let ``Detector.ai_line(target_fpr)`` apply the same
    rule at a target the caller chooses; a pooled line alone would drop the per-writer promise.
    """
    humans = data.y[rows] == 0
    ph = p[humans]
    answered = data.n_tokens[rows][humans] >= min_tokens
    groups = {"all": ph}
    if min_tokens and answered.any():
        groups[f"length>={min_tokens}"] = ph[answered]
    for kind, labels, keep in (("source", data.rows["source"].to_numpy()[rows][humans], np.ones_like(answered)),
                               ("length", np.asarray([length_bucket(n) for n in data.n_tokens[rows]])[humans],
                                answered)):
        for value in np.unique(labels[keep]):
            sel = keep & (labels == value)
            if sel.sum() >= MIN_GROUP_HUMANS:
                groups[f"{kind}={value}"] = ph[sel]
    for source, q in held_out_humans.items():
        if len(q) >= MIN_GROUP_HUMANS:
            groups[f"unseen={source}"] = np.asarray(q)
    return groups


def ai_line(data: Prepared, rows: np.ndarray, p: np.ndarray, min_tokens: int = 0) -> float:
    """The in-distribution `ai` threshold from out-of-fold probabilities ``p`` of ``rows``: the strictest
    1%-FPR line over the human groups of :func:`human_groups`, so the promise holds for every writer the fit
    data can measure."""
    return max(threshold_at_fpr(q, TARGET_FPR) for q in human_groups(data, rows, p, {}, min_tokens).values())


def add_heldout_ai_fpr(table: dict, flagged: dict) -> dict:
    """Per fold and model, the share of the held-out group's humans at or above the fold's own `ai` line."""
    for (fold, model), (n_flagged, n_human) in flagged.items():
        if fold in table and n_human:
            table[fold][model].update(ai_flagged=n_flagged, ai_humans=n_human, ai_fpr=n_flagged / n_human)
    return table


def choose_design(candidates: dict[tuple, dict],
                  worst_ai_fpr: Callable[[tuple], float | None] | None = None) -> tuple:
    """The design to ship, from each candidate's leave-one-source-out ``guard_check``.

    Best mean AUROC among candidates that never trail the best zero-shot feature by more than the margin and
    whose folds' own `ai` lines accuse at most ``MAX_HELDOUT_AI_FPR`` of any held-out source's humans. If the
    guard holds somewhere but no candidate keeps humans that safe, the one accusing fewest wins (accusing a
    writer is the worst failure); if the guard holds nowhere, the one whose worst fold trails least.
    ``worst_ai_fpr(candidate)`` measures the accusations on demand (default: the candidate's stored value), in
    order of mean AUROC, until one passes: each measurement refits nested folds.
    """
    if all(g["holds"] is None for g in candidates.values()):  # no usable fold (e.g. a single source)
        return next(iter(candidates))
    measure = worst_ai_fpr or (lambda c: candidates[c].get("worst_ai_fpr"))
    ok = sorted((c for c, g in candidates.items() if g["holds"]), key=lambda c: -candidates[c]["mean_auroc"])
    seen: dict[tuple, float] = {}
    for c in ok:
        value = measure(c)
        seen[c] = 0.0 if value is None else value  # None: nothing to measure it on
        if seen[c] <= MAX_HELDOUT_AI_FPR:
            return c
    if ok:
        return min(ok, key=lambda c: (seen[c], -candidates[c]["mean_auroc"]))
    return max(candidates, key=lambda c: min(candidates[c]["gaps"].values()))


def head_manifest(design, weight: float, head=None) -> dict:
    """The manifest's ``head`` entry for the chosen design."""
    common = {"file": "head.safetensors", "pooling": "token_mean", "design": design.name, "blend_weight": weight}
    if isinstance(design, BlocksDesign):
        return {"kind": "blocks", "k": design.k, "epochs": design.epochs, "lr": design.lr,
                "weights_dtype": "bfloat16", **common}
    out = {"kind": "probe", "layers": list(design.layers), "C": design.C, **common}
    if isinstance(head, RoutedProbe):
        out.update(experts=list(head.experts_), router_C=head.router_C)
    return out


def head_tensors(head) -> dict[str, torch.Tensor]:
    """What ``head.safetensors`` stores. Fine-tuned blocks are kept in bf16 (half the bundle; the detector runs
    them in fp32), so every reported number is measured with the rounded weights the bundle ships."""
    if isinstance(head, HeadTrainer):
        return {k: v.to(torch.bfloat16) for k, v in head.head_.trainable_state_dict().items()}
    return head.to_tensors()


def run(cfg: Config) -> dict:
    """The whole pipeline; returns the evaluation summary."""
    from training.evaluate import evaluate_bundle

    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.runs_dir) / cfg.name
    lm, data, folder = prepare(cfg, run_dir)
    idx = {s: data.idx(s) for s in ("train", "cal", "test")}
    print(f"[train] LM {lm.identity} ({lm.precision}); train/cal/test {[len(v) for v in idx.values()]}",
          file=sys.stderr)

    # Calibrating on the answered texts needs the abstention first: then every calibration below learns from,
    # and every fold's `ai` line guards, the texts of at least `min_tokens` (``answered_from``).
    answered_from = 0
    if cfg.calibrate_on == "answered":
        min_tokens, length_table = measure_min_tokens(cfg, data, idx)
        answered_from = min_tokens
        print(f"[train] min_tokens {min_tokens}: {length_table}", file=sys.stderr)

    # Design choice (probe regularisation and depth, blend weight toward the zero-shot model) by the
    # leave-one-source-out table, never by the test split.
    candidates: dict[tuple, dict] = {}
    for design in head_designs(cfg, data.layers):
        for cal in cfg.calibration:
            table = generalization(cfg, data, design, BLEND_WEIGHTS, with_logo=False, unseen_lines=False,
                                   calibration=cal, min_tokens=answered_from)["leave_one_source_out_table"]
            for w in BLEND_WEIGHTS:
                g = candidates[(design, w, cal)] = guard_check(table, f"combined_w{w}")
                g["worst_ai_fpr"] = None  # measured below with the shipped `ai` rule, for the designs that need it
                print(f"[train] {design.name}, blend {w}, {cal}: LOSO mean AUROC {g['mean_auroc']}, "
                      f"guard holds: {g['holds']}", file=sys.stderr)

    def heldout_accusations(candidate: tuple) -> float | None:
        design, w, cal = candidate
        table = generalization(cfg, data, design, (w,), with_logo=False, calibration=cal,
                               min_tokens=answered_from)["leave_one_source_out_table"]
        value = candidates[candidate]["worst_ai_fpr"] = guard_check(table, f"combined_w{w}")["worst_ai_fpr"]
        print(f"[train] {design.name}, blend {w}, {cal}: worst held-out humans called ai {value}", file=sys.stderr)
        return value

    design, weight, calibration = choose_design(candidates, heldout_accusations)
    gen = generalization(cfg, data, design, sorted({weight, 1.0}, reverse=True), calibration=calibration,
                         min_tokens=answered_from)
    unseen_p = gen.pop("_unseen_p")[weight]
    gen["models"] = [f"combined_w{weight}"] + [m for m in gen["models"] if m != f"combined_w{weight}"]
    gen["zero_shot_guard"] = guard_check(gen["leave_one_source_out_table"], f"combined_w{weight}")
    gen["design_selection"] = {f"{d.name}, blend weight {w}, {cal}": {"loso_mean_auroc": g["mean_auroc"],
                                                                      "guard_holds": g["holds"],
                                                                      "worst_heldout_ai_fpr": g["worst_ai_fpr"]}
                               for (d, w, cal), g in candidates.items()}
    gen["design_rule"] = (f"best leave-one-source-out mean AUROC among designs within {ZERO_SHOT_MARGIN} of the "
                          f"best zero-shot feature on every fold and whose fold `ai` lines accuse <= "
                          f"{MAX_HELDOUT_AI_FPR:.1%} of every held-out source's humans (measured in order of mean "
                          f"AUROC until one passes; the rest: not measured)")
    gen["chosen"] = {"head": design.name, "blend_weight": weight, "calibration": calibration}

    head, logits = fit_head(data, idx["train"], design, cfg)
    fit = combiner_rows(design, idx["train"], idx["cal"])
    fit_rows = [dict(data.zs_rows[i], classifier_logit=float(logits[i])) for i in fit]
    y_fit = data.y[fit]
    cal_rows = fit_rows[len(fit) - len(idx["cal"]):]
    unblended, features_only, single = fit_combiners(data, logits, fit, cfg.seed, design.zero_shot, calibration,
                                                     answered_from)
    combined = CalibratedCombiner.blend(unblended, single, weight, y_fit)
    names = list(combined.feature_names)
    classifier_only = CalibratedCombiner(["classifier_logit"], calibration=calibration, random_state=cfg.seed,
                                         calibrate_from=answered_from)
    classifier_only.fit(classifier_only.matrix(fit_rows), y_fit, data.n_tokens[fit])

    p_cal, y_cal = combined.oof_proba_, y_fit
    n_cal = data.n_tokens[fit]
    if not answered_from:  # calibrated on every length: the abstention is measured on the shipped model
        min_tokens, length_table = choose_min_tokens(n_cal, y_cal, p_cal)
    t_ai_seen = ai_line(data, fit, p_cal, min_tokens)
    t_ai_unseen = unseen_source_line(unseen_p)
    t_ai = max(t_ai_seen, t_ai_unseen)
    t_human = min(threshold_at_fnr(p_cal[y_cal == 1], TARGET_FNR), t_ai)

    # Sentence model: a fine-tuned head's per-token logits are in the cache's reach (its hidden state is kept),
    # so its sentences carry their own classifier score; the probe's per-token logits need per-layer token
    # states the cache does not keep, so with a probe sentences are scored from their token statistics only.
    rng = np.random.default_rng(cfg.seed)
    cal_records = [data.records[i] for i in idx["cal"]]
    if isinstance(design, BlocksDesign):
        token_logits = head.predict([r["hidden"] for r in cal_records])[1]  # behind its frozen bridge
        seg_names = list(SEGMENT_FEATURE_NAMES)
    else:
        token_logits = [None] * len(cal_records)
        seg_names = [n for n in SEGMENT_FEATURE_NAMES if n != "classifier_logit"]
    seg_x, seg_y = segment_rows(cal_records, token_logits, data.y[idx["cal"]], rng)
    segment = CalibratedCombiner(seg_names, SEGMENT_LOG_FEATURES, random_state=cfg.seed)
    segment.fit(segment.matrix(seg_x), seg_y)

    thresholds = {"ai": t_ai, "human": t_human, "target_fpr": TARGET_FPR, "target_fnr": TARGET_FNR,
                  "ai_rule": f"strictest 1%-FPR line over all humans, each source and each length bucket from "
                             f"min_tokens on with >= {MIN_GROUP_HUMANS} human texts (out-of-fold, train + cal), and "
                             f"over each source's "
                             f"train + cal humans scored by the leave-one-source-out model fit without it",
                  "ai_in_distribution": t_ai_seen, "ai_unseen_source": t_ai_unseen,
                  "min_tokens": min_tokens, "min_tokens_measurement": length_table,
                  "min_tokens_measured_with": (f"{head_designs(cfg, data.layers)[0].name}, out-of-fold"
                                               if answered_from else "the shipped model, out-of-fold"),
                  "calibrated_on": (f"train + cal texts of >= {answered_from} tokens (the answered ones)"
                                    if answered_from else "train + cal texts of every length"),
                  "min_bucket_auroc": MIN_BUCKET_AUROC}
    manifest = {
        "name": cfg.name, "format_version": FORMAT_VERSION, "backbone": describe(lm), "max_tokens": cfg.max_tokens,
        "precision": lm.precision,
        "head": head_manifest(design, weight, head),
        "features": names, "segment_features": seg_names, "languages": [cfg.lang],
        "thresholds": thresholds,
        "calibration_probs": {"human": sorted(float(v) for v in p_cal[y_cal == 0]),
                              "ai": sorted(float(v) for v in p_cal[y_cal == 1]),
                              "ai_line_groups": {name: sorted(float(v) for v in q) for name, q in
                                                 human_groups(data, fit, p_cal, unseen_p, min_tokens).items()}},
        "feature_ranges": feature_ranges(cal_rows, data.y[idx["cal"]]), "versions": versions(),
        "data": {"sources": list(cfg.sources), "lang": cfg.lang, "licences": source_licences(cfg.sources),
                 "counts": split_manifest(data.rows)["counts"],
                 "label_policy": "AI = wording produced by a language model, including human drafts polished, "
                                 "paraphrased or back-translated by a model; typo/character edits of human "
                                 "text stay human",
                 "split": "grouped by pair_id (id when null), hashed with seed; see runs/<name>/split.json",
                 "config": cfg.data_key()},
    }
    bundle = Bundle(path=Path(cfg.bundle_dir or BUNDLES_DIR / cfg.name), manifest=manifest, combiner=combined,
                    segment_combiner=segment, head_state=head_tensors(head), metrics={},
                    ablation={"features_only": features_only, "classifier_only": classifier_only,
                              "combined_unblended": unblended, f"best_feature_{single.feature_names[0]}": single})
    bundle.save()
    Path(cfg.reports_dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.reports_dir) / f"split_{cfg.name}.json").write_text(json.dumps(split_manifest(data.rows), default=str))
    extra = {"n": {s: int(len(v)) for s, v in idx.items()}, "lm_pass_cache": str(folder),
             "calibration_cv_brier": combined.calibration_scores_, "combiner_C": combined.C_,
             "command": cfg.command or "python -m training.train"}
    report = evaluate_bundle(bundle.path, run_dir, Path(cfg.reports_dir), extra=extra, generalization=gen,
                             data=data)
    bundle.metrics = json.loads(json.dumps({"overall": report["overall"], "ablation": report.get("ablation"),
                                            "leave_one_source_out": report.get("leave_one_source_out"),
                                            "thresholds": thresholds}, default=str))
    bundle.save()
    print(f"[train] bundle written to {bundle.path}", file=sys.stderr)
    return report


def parse_args(argv: list[str] | None = None) -> Config:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Config()
    ap.add_argument("--name", default=d.name, help="bundle and run name")
    ap.add_argument("--lm", default=d.lm, help="backbone: embedded:smollm2, embedded:gemma3, a hub id or a local path")
    ap.add_argument("--data-dir", default=None, help="root of local datasets (default $DETECTOR_DATA_DIR or "
                                                     "../shared/data)")
    ap.add_argument("--sources", nargs="+", default=list(d.sources), help="dataset folders, paths or hub ids")
    ap.add_argument("--sizes", default=",".join(map(str, d.sizes)), help="texts in train,cal,test")
    ap.add_argument("--max-tokens", type=int, default=d.max_tokens)
    ap.add_argument("--min-chars", type=int, default=d.min_chars, help="skip texts shorter than this (characters)")
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--runs-dir", default=d.runs_dir)
    ap.add_argument("--bundle-dir", default=None)
    ap.add_argument("--reports-dir", default=None, help="default: reports/ for the shipped smollm2-en, "
                                                        "reports/<name>/ for any other bundle")
    ap.add_argument("--device", default=None)
    ap.add_argument("--lang", default=d.lang, help="language of the texts used (and of the bundle)")
    ap.add_argument("--pass-only", action="store_true", help="only run (or resume) the cached LM pass")
    ap.add_argument("--partial", action="store_true", help="train on the texts already in the LM-pass cache "
                                                           "instead of finishing the pass first")
    ap.add_argument("--heads", nargs="+", default=list(d.heads), choices=["probe", "routed", "blocks"],
                    help="head families in the design grid (routed: one probe per source behind a source router; "
                         "blocks: fine-tuned top blocks, much slower)")
    ap.add_argument("--block-k", default=",".join(map(str, d.block_k)), help="depths of fine-tuned blocks heads")
    ap.add_argument("--calibration", nargs="+", default=list(d.calibration), choices=list(CALIBRATIONS),
                    help="document calibrations the design grid tries: one Platt line, platt_length (its slope "
                         "depends on length)")
    ap.add_argument("--exclude-features", nargs="*", default=list(d.exclude_features), choices=list(COMBINER_FEATURES),
                    help="zero-shot features kept out of the combiner (default: the per-character ones, see "
                         "NOT_SHIPPED; give the flag with no names to use every feature)")
    ap.add_argument("--calibrate-on", default=d.calibrate_on, choices=list(CALIBRATE_ON),
                    help="texts the document calibration learns from: all, or only those the detector answers "
                         "(>= min_tokens, measured first; folds and `ai` lines follow)")
    ap.add_argument("--worker", default="0/1", help="i/n: this process takes every n-th text of the pass "
                                                    "(run n processes with --pass-only and OMP_NUM_THREADS=1)")
    a = ap.parse_args(argv)
    args = sys.argv[1:] if argv is None else list(argv)
    weights = d.source_weights if a.sources == list(d.sources) else ()  # () = equal weights
    return Config(name=a.name, lm=a.lm, data_dir=a.data_dir, sources=tuple(a.sources),
                  sizes=tuple(int(x) for x in a.sizes.split(",")), source_weights=weights,
                  max_tokens=a.max_tokens, min_chars=a.min_chars, batch_size=a.batch_size,
                  runs_dir=a.runs_dir,
                  bundle_dir=a.bundle_dir, device=a.device, lang=a.lang,
                  reports_dir=a.reports_dir or (d.reports_dir if a.name == d.name
                                                else str(Path(d.reports_dir) / a.name)),
                  pass_only=a.pass_only, partial=a.partial, worker=int(a.worker.split("/")[0]),
                  n_workers=int(a.worker.split("/")[1]), pausable=True, heads=tuple(a.heads),
                  block_k=tuple(int(x) for x in a.block_k.split(",")), calibration=tuple(a.calibration),
                  exclude_features=tuple(a.exclude_features), calibrate_on=a.calibrate_on,
                  command=" ".join(["python -m training.train", *map(shlex.quote, args)]))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    if cfg.pass_only:
        rows = prepare_rows(cfg, Path(cfg.runs_dir) / cfg.name)
        run_pass(cfg, load_lm(cfg.lm, device=cfg.device), normalized(rows["text"].tolist()))
        return 0
    run(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
