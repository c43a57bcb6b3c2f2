"""What every fit reads: the sampled rows whose LM pass is cached, their zero-shot features and pooled states.

``prepare`` runs steps 1 and 2 (``training.rows``, ``training.lm_pass``) and turns the cached pass into
``Prepared``; the fits (``training.fit``), the `ai` lines (``training.thresholds``), the design grid
(``training.design_grid``) and the evaluation (``training.evaluate``) all work on it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from detector.features import extract_features
from detector.lm import LanguageModel, load_lm
from detector.sentences import sentence_spans
from detector.token_stats import TokenStats
from training.config import COMBINER_FEATURES, Config
from training.featurize import load_records, normalized, pooled_layers
from training.lm_pass import pass_folder, run_pass
from training.rows import prepare_rows


def _stats(rec: dict) -> TokenStats:
    return TokenStats(token_ids=rec["token_ids"], offsets=rec["offsets"], logprob=rec["logprob"], rank=rec["rank"],
                      entropy=rec["entropy"], var_ref=rec["var_ref"], truncated=rec["truncated"])


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
    backbone: LanguageModel | None = field(default=None, repr=False)  # the LM (fine-tuned heads copy its top blocks)
    run_dir: Path | None = None  # where fine-tuned heads keep their resumable checkpoints
    features: tuple[str, ...] = COMBINER_FEATURES  # the zero-shot features in Z (columns), in order

    def idx(self, split: str) -> np.ndarray:
        """Row indices of one split ("train", "cal" or "test")."""
        return np.flatnonzero(self.rows["split"].to_numpy() == split)

    @property
    def n_tokens(self) -> np.ndarray:
        """Scored tokens per text (what a length-aware calibration reads)."""
        return self.rows["n_tokens"].to_numpy().astype(np.float64)


def prepare(cfg: Config, run_dir: Path, only: Callable[[pd.DataFrame], np.ndarray] | None = None,
            ) -> tuple[LanguageModel, Prepared, Path]:
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
