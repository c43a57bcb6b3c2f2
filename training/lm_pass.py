"""Step 2 of training: one LM pass per sampled text, run or resumed through the cache of ``training.featurize``.

The texts are visited in a seeded random order, so a pass cut short (or split over workers, ``--worker i/n``)
has covered a fair sample of the run, and ``--partial`` can train on it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from detector.lm import LanguageModel
from training.config import Config
from training.featurize import cached_count, featurize, pass_dir


def pass_folder(cfg: Config, lm: LanguageModel) -> Path:
    """The LM-pass cache folder of this configuration on ``lm`` (hidden state kept at block L - cached_k)."""
    return pass_dir(lm, max_tokens=cfg.max_tokens, hidden_layer=lm.num_layers - cfg.cached_depth(lm.num_layers))


def run_pass(cfg: Config, lm: LanguageModel, texts: list[str]) -> Path:
    """The LM pass over the normalised ``texts`` (seeded random order, so a partial pass is a fair sample)."""
    folder = pass_folder(cfg, lm)
    order = np.random.default_rng(cfg.seed).permutation(len(texts))
    print(f"[train] LM pass: {cached_count(folder, texts)}/{len(texts)} texts cached in {folder}", file=sys.stderr)
    featurize(lm, [texts[i] for i in order], folder, max_tokens=cfg.max_tokens,
              hidden_layer=lm.num_layers - cfg.cached_depth(lm.num_layers), batch_size=cfg.batch_size,
              worker=cfg.worker, n_workers=cfg.n_workers, pausable=cfg.pausable)
    return folder
